"""The page list, in one place: app.py navigates with it, and a page run on its own uses it to switch Streamlit
into st.navigation mode (see state.context)."""

import streamlit as st


def pages() -> list:
    return [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/tokenizer.py", title="Tokenizer", icon="✂️", url_path="tokenizer"),
        st.Page("pages/embeddings.py", title="Embedding space", icon="🧭", url_path="embeddings"),
        st.Page("pages/positions.py", title="Positional encoding", icon="📍", url_path="positions"),
        st.Page("pages/attention.py", title="Attention", icon="👀", url_path="attention"),
        st.Page("pages/next_token.py", title="Next token", icon="🎲", url_path="next_token"),
        st.Page("pages/training.py", title="How it learned", icon="📈", url_path="training"),
    ]
