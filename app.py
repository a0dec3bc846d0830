"""Glassbox: the frame. Page config, the shared sidebar (model, device, text), navigation over the pages."""

import importlib

import streamlit as st

from pages.common import nav

# Navigation before anything slow: on a fresh server's first page Streamlit shows the pages/ folder's raw file names
# ("app, attention, embeddings, feed forward …") until this call replaces them, which took 1.5-4 s behind the imports.
page = st.navigation(nav.pages())

# Imported once, here, before any learner's page runs: plotly (through narwhals) and Streamlit look a library up in
# sys.modules without importing it, and a lookup made while another learner's thread is still importing it finds a
# half-built module ("partially initialized module 'pandas' has no attribute 'Series'": 1-2 of 5 first trainings on
# a fresh server). Paid once per server (~1 s), at its first page. pyarrow: Streamlit's dataframes (narwhals looks it
# up the same way), where it is installed.
for _library in ("numpy", "pandas", "PIL.Image", "plotly.graph_objects", "pyarrow"):
    try:
        importlib.import_module(_library)
    except ImportError:
        if _library != "pyarrow":
            raise

from pages.common import cache, errors, pins, present, server, sidebar, url  # noqa: E402  (after the navigation)
from pages.common.chart import browser_side  # noqa: E402

LIGHT = {"", "home"}  # pages drawn from the model's config alone
server.harden()  # a client's clear_cache message no longer flushes every learner's caches
server.freeze_long_lived()  # Streamlit's collection after every run no longer walks every imported module (the
# modules a page imported are frozen at the next run's start, before that run's page makes anything)

st.set_page_config(page_title="Glassbox — a see-through transformer", page_icon="🔍", layout="wide",
                   initial_sidebar_state="collapsed" if present.from_link() else "auto")
st.html(browser_side(), unsafe_allow_javascript=True)  # the download buttons' script and the shared styles

try:
    st.session_state["ctx"] = sidebar.sidebar()
    if present.on():
        st.html(present.STYLE)
    url.show_notices()
    st.session_state["_frame"] = True  # tells the page that this frame ran (see sidebar.context)
    spec, kind = nav.spec(page.url_path), st.session_state["ctx"].entry.kind
    st.session_state["_page"] = spec.url_path or "home"  # for file names of downloads
    if kind in spec.kinds:
        try:  # one page run per core at once (Home never waits): what a class's pages hold while they draw is bounded
            if spec.url_path in LIGHT:
                page.run()
            else:
                cache.compute(page.run)
        finally:
            pins.unpin_traces()  # the page's fragments keep its globals: they must not keep its traces too
    else:
        nav.not_for_this_model(spec, st.session_state["ctx"].model_name, kind)
except Exception as err:  # st.stop, st.rerun and switch_page are BaseExceptions and pass through
    errors.report(err)
except BaseException as err:  # a Rust panic (tokenizers) is a BaseException too: report it, never lose the thread
    if not errors.is_panic(err):
        raise
    errors.report(err)
finally:
    st.session_state.pop("_frame", None)
