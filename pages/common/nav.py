"""The page list, in one place: app.py navigates with it, tests and benchmarks read it, and a page run on its own
uses it to switch Streamlit into st.navigation mode (see sidebar.context). A new page is a file in pages/ and one
line here."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class PageSpec:
    path: str  # the script, relative to the repository root
    title: str
    icon: str
    url_path: str  # "" for the home page

    @property
    def default(self) -> bool:
        return self.url_path == ""


PAGES = [
    PageSpec("pages/home.py", "Home", "🏠", ""),
    PageSpec("pages/forward_pass.py", "The forward pass", "🧩", "forward_pass"),
    PageSpec("pages/tokenizer.py", "Tokenizer", "✂️", "tokenizer"),
    PageSpec("pages/embeddings.py", "Embedding space", "🧭", "embeddings"),
    PageSpec("pages/positions.py", "Positional encoding", "📍", "positions"),
    PageSpec("pages/attention.py", "Attention", "👀", "attention"),
    PageSpec("pages/feed_forward.py", "Feed-forward layer", "🧠", "feed_forward"),
    PageSpec("pages/residual.py", "Residual stream & norms", "➕", "residual"),
    PageSpec("pages/next_token.py", "Next token", "🎲", "next_token"),
    PageSpec("pages/generation.py", "Generation & KV cache", "🔁", "generation"),
    PageSpec("pages/prompting.py", "Zero- vs few-shot", "🧪", "prompting"),
    PageSpec("pages/parameters.py", "Where the parameters live", "🧮", "parameters"),
    PageSpec("pages/training.py", "How it learned", "📈", "training"),
    PageSpec("pages/fine_tuning.py", "Train it yourself", "🏋️", "fine_tuning"),
]


def pages() -> list:
    return [st.Page(p.path, title=p.title, icon=p.icon, default=True) if p.default
            else st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES]
