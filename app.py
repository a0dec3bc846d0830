"""Glassbox: the frame. Page config, the shared sidebar (model, device, text), navigation over the pages."""

import streamlit as st

from pages.common import errors, nav, sidebar, url

st.set_page_config(page_title="Glassbox — a see-through transformer", page_icon="🔍", layout="wide")
# Names in code spans (`cl100k_base`, `<|im_start|>`) wrap between words, never inside one.
st.html("<style>[data-testid='stMarkdownContainer'] code {white-space: nowrap}</style>")


page = st.navigation(nav.pages())
try:
    st.session_state["ctx"] = sidebar.sidebar()
    url.show_notices()
    st.session_state["_frame"] = True  # tells the page that this frame ran (see sidebar.context)
    spec, kind = nav.spec(page.url_path), st.session_state["ctx"].entry.kind
    if kind in spec.kinds:
        page.run()
    else:
        nav.not_for_this_model(spec, st.session_state["ctx"].model_name, kind)
except Exception as err:  # st.stop, st.rerun and switch_page are BaseExceptions and pass through
    errors.report(err)
finally:
    st.session_state.pop("_frame", None)
