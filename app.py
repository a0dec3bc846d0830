"""Glassbox: the frame. Page config, the shared sidebar (model, device, text), navigation over the pages."""

import streamlit as st

from pages.common import errors, nav, present, sidebar, url
from pages.common.chart import browser_side

st.set_page_config(page_title="Glassbox — a see-through transformer", page_icon="🔍", layout="wide",
                   initial_sidebar_state="collapsed" if present.from_link() else "auto")
st.html(browser_side(), unsafe_allow_javascript=True)  # the download buttons' script and the shared styles


page = st.navigation(nav.pages())
try:
    st.session_state["ctx"] = sidebar.sidebar()
    if present.on():
        st.html(present.STYLE)
    url.show_notices()
    st.session_state["_frame"] = True  # tells the page that this frame ran (see sidebar.context)
    spec, kind = nav.spec(page.url_path), st.session_state["ctx"].entry.kind
    st.session_state["_page"] = spec.url_path or "home"  # for file names of downloads
    if kind in spec.kinds:
        page.run()
    else:
        nav.not_for_this_model(spec, st.session_state["ctx"].model_name, kind)
except Exception as err:  # st.stop, st.rerun and switch_page are BaseExceptions and pass through
    errors.report(err)
finally:
    st.session_state.pop("_frame", None)
