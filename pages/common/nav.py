"""The page list, in one place: app.py navigates with it, tests and benchmarks read it, and a page run on its own
uses it to switch Streamlit into st.navigation mode (see sidebar.context). A new page is a file in pages/ and one
line here."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

ALL = ("decoder", "encoder", "encoder-decoder")


@dataclass(frozen=True)
class PageSpec:
    path: str  # the script, relative to the repository root
    title: str
    icon: str
    url_path: str  # "" for the home page
    kinds: tuple[str, ...] = ("decoder", "encoder")  # the models it can look inside (registry.ModelEntry.kind)

    @property
    def default(self) -> bool:
        return self.url_path == ""


PAGES = [
    PageSpec("pages/home.py", "Home", "🏠", "", ALL),
    PageSpec("pages/lesson.py", "Lesson: step by step", "🎓", "lesson"),
    PageSpec("pages/quiz.py", "Quiz: predict, then reveal", "🤔", "quiz"),
    PageSpec("pages/forward_pass.py", "The forward pass", "🧩", "forward_pass"),
    PageSpec("pages/tokenizer.py", "Tokenizer", "✂️", "tokenizer"),
    PageSpec("pages/embeddings.py", "Embedding space", "🧭", "embeddings"),
    PageSpec("pages/positions.py", "Positional encoding", "📍", "positions", ALL),
    PageSpec("pages/attention.py", "Attention", "👀", "attention"),
    PageSpec("pages/feed_forward.py", "Feed-forward layer", "🧠", "feed_forward"),
    PageSpec("pages/residual.py", "Residual stream & norms", "➕", "residual"),
    PageSpec("pages/next_token.py", "Next token", "🎲", "next_token"),
    PageSpec("pages/generation.py", "Generation & KV cache", "🔁", "generation"),
    PageSpec("pages/patching.py", "Activation patching", "🔬", "patching"),
    PageSpec("pages/steering.py", "Steering", "🧲", "steering"),
    PageSpec("pages/surprise.py", "Surprise over the whole text", "😮", "surprise"),
    PageSpec("pages/saliency.py", "Which words mattered", "🔦", "saliency"),
    PageSpec("pages/flow.py", "Information flow", "🕸️", "flow"),
    PageSpec("pages/two_models.py", "Two models side by side", "⚖️", "two_models"),
    PageSpec("pages/translation.py", "Translation: encoder–decoder", "🇫🇷", "translation", ALL),
    PageSpec("pages/prompting.py", "Zero- vs few-shot", "🧪", "prompting"),
    PageSpec("pages/parameters.py", "Where the parameters live", "🧮", "parameters"),
    PageSpec("pages/training.py", "How it learned", "📈", "training"),
    PageSpec("pages/fine_tuning.py", "Train it yourself", "🏋️", "fine_tuning"),
]


def pages() -> list:
    return [st.Page(p.path, title=p.title, icon=p.icon, default=True) if p.default
            else st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES]


def spec(url_path: str) -> PageSpec:
    return next(p for p in PAGES if p.url_path == url_path)


def not_for_this_model(page: PageSpec, model_name: str, kind: str) -> None:
    """What a page says instead of its views when the chosen model is of a kind it cannot look inside."""
    st.title(f"{page.icon} {page.title}")
    if kind == "encoder-decoder":
        st.info(f"**{model_name}** is an encoder–decoder (the original Transformer): an encoder reads the English "
                "sentence, a decoder writes the French one, and three kinds of attention connect them. This page "
                "looks inside a single stack of blocks that reads one text — a decoder such as GPT or an encoder such "
                "as BERT — so its views do not apply here as they are. The Translation page shows this model's "
                "tokens, its three attentions and each word it writes; pick another model in the sidebar to use "
                "this page.", icon="ℹ️")
    else:
        st.info(f"This page needs an encoder–decoder; **{model_name}** is a {kind}.", icon="ℹ️")
    st.page_link("pages/translation.py", label="Open the Translation page", icon="🇫🇷")
