"""Glassbox: the frame. Page config, the shared sidebar (model, device, text), navigation over the pages."""

import streamlit as st

from pages.common import state

st.set_page_config(page_title="Glassbox — a see-through transformer", page_icon="🔍", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/tokenizer.py", title="Tokenizer", icon="✂️", url_path="tokenizer"),
    st.Page("pages/embeddings.py", title="Embedding space", icon="🧭", url_path="embeddings"),
    st.Page("pages/positions.py", title="Positional encoding", icon="📍", url_path="positions"),
    st.Page("pages/attention.py", title="Attention", icon="👀", url_path="attention"),
    st.Page("pages/next_token.py", title="Next token", icon="🎲", url_path="next-token"),
    st.Page("pages/training.py", title="How it learned", icon="📈", url_path="training"),
]

page = st.navigation(PAGES)
st.session_state["ctx"] = state.sidebar()
state.show_notices()
st.session_state["_frame"] = True  # tells the page that this frame ran (see state.context)
try:
    page.run()
finally:
    st.session_state.pop("_frame", None)
    state.write_url()
