"""The shared sidebar and the model it loads: model, device and text (all in the URL), a progress bar while a model
is fetched, and the Context every page reads.

A model that fails to load (offline, a broken download) leaves the previous one in place and says why.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import streamlit as st
import torch

from core.loading import hub, registry
from core.trace import token_limit
from pages.common import cache, errors, pins, present, url, widgets

MAX_TEXT_CHARS = 40_000  # SmolLM2's whole 8,192-token context is about 33,000 characters of English
# The box itself takes more, so that a longer text (pasted, or sent over the websocket by any client) reaches the
# sidebar and is cut here with a notice: at its own max_chars Streamlit cuts or drops a value without a word (a 1 MB
# text became the default text). This bound keeps what one session can store in the box to 0.4 MB.
BOX_MAX_CHARS = 10 * MAX_TEXT_CHARS
DEFAULT_TEXT = "Once upon a time, there was a little"
EXAMPLES = [
    "Once upon a time, there was a little",
    "Lily and Tom went to the park to play.",
    "The teacher taught the student with the book.",
    "The animal didn't cross the street because it was too tired.",
    "I went to the bank to deposit money.",
    "I sat on the bank of the river.",
    "Hello world",
]


def device_choices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@dataclass
class Context:
    """What every page needs: the chosen model and the text, plus cached traces of it."""

    model_name: str
    device: str
    text: str

    @property
    def model(self):
        return cache.model(self.model_name, self.device)

    @property
    def entry(self) -> registry.ModelEntry:
        return registry.get(self.model_name)

    def trace(self, text: str | None = None, **options):
        tr = cache.traced(self.model_name, self.device, self.text if text is None else text, **options)
        pins.handed_out(tr, lambda: self.trace(text, **options))
        return tr


def _load_with_progress(name: str, device: str) -> bool:
    """Fetch (with a progress bar) and load a model; on failure say why and keep the previous one."""
    bar = st.sidebar.empty()

    def progress(frac: float, message: str) -> None:
        bar.progress(frac, text=message)

    try:
        notice = registry.get(name).fetch(progress)  # outside the cached loader, so the bar can be drawn
        if notice:
            url.notice(notice)
        cache.model(name, device)
        return True
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as err:
        errors.log.warning("could not load %s: %s", name, err)
        st.sidebar.error(f"Could not load {name[:100]}: {errors.without_paths(str(err))}")
        return False
    finally:
        bar.empty()


def _use_example() -> None:
    st.session_state["text"] = st.session_state["_example"]


def _use_hub_repo() -> None:
    """The learner typed a Hub repo id: offer it in the model list and pick it (it loads on this run)."""
    repo = st.session_state.get("_hub_repo", "").strip()
    if not repo:
        return
    if not hub.is_repo_id(repo):
        st.session_state["_hub_problem"] = f"“{repo[:80]}” is not a Hub repo id: it looks like organisation/name."
        return
    st.session_state.setdefault("_hub_models", [])
    if repo not in st.session_state["_hub_models"]:
        st.session_state["_hub_models"].append(repo)
    st.session_state["model"] = repo


def model_names() -> list[str]:
    """The models offered here: the registry's, then the Hub repos this session asked for."""
    extra = [m for m in st.session_state.get("_hub_models", []) if m not in registry.ENTRIES]
    return registry.names() + extra


def _choose_model() -> tuple[str, str]:
    """The model and device to use this run: the wanted ones once they load, else the last that did."""
    for key, options in (("model", registry.names()), ("device", device_choices())):
        message = url.check(key, lambda raw, k=key, o=options: None if raw in o or (k == "model" and hub.is_repo_id(
            raw)) else url.ignored(k, raw, o[0]))
        if message:
            url.notice(message)
    linked = url.value("model", registry.DEFAULT_MODEL)
    if linked not in model_names() and hub.is_repo_id(str(linked)):  # a shared link to a Hub model
        st.session_state.setdefault("_hub_models", []).append(linked)
    loaded = st.session_state.get("_loaded", (registry.DEFAULT_MODEL, "cpu"))
    wanted = (url.value("model", registry.DEFAULT_MODEL), url.value("device", "cpu"))
    if wanted != loaded:
        if _load_with_progress(*wanted):
            loaded = st.session_state["_loaded"] = wanted
        st.session_state["model"], st.session_state["device"] = loaded
    return loaded


def _token_count(ctx: Context) -> None:
    model = ctx.model
    if model.tokenizer is None or model.config.encoder_decoder:  # the translator reads its own box, not this text
        return
    n, pieces = cache.token_census(ctx.model_name, ctx.device, ctx.text)
    limit = token_limit(model.config)
    st.caption(f"{n:,} tokens · context length {model.config.n_ctx:,}" + (
        f" · {pieces:,} {'is a piece' if pieces == 1 else 'are pieces'} of a character written in several bytes "
        "(an emoji, a Chinese character…), shown as `\\xNN` on the pages" if pieces else ""))
    if n > limit < model.config.n_ctx:
        st.warning(f"Only the first {limit:,} of {n:,} tokens go through the model here: it reads up to "
                   f"{model.config.n_ctx:,}, but recording all its attention weights for more would take too much "
                   f"memory (the Tokenizer page still splits the whole text, and the Attention page can follow one head over "
                   f"{min(n, model.config.n_ctx):,} tokens).", icon="✂️")
    elif n > model.config.n_ctx:
        st.warning(f"Only the first {model.config.n_ctx:,} of {n:,} tokens go through the model: that is all it can "
                   "read at once (the Tokenizer page still splits the whole text).", icon="✂️")


def within_limit(text: str) -> str:
    """The text the pages read: its first MAX_TEXT_CHARS characters, with a notice when it had more (from the box,
    a link or any client: the same notice)."""
    if len(text) <= MAX_TEXT_CHARS:
        return text
    more = "more than " if len(text) >= BOX_MAX_CHARS else ""
    url.notice(f"The text was {more}{len(text):,} characters; the first {MAX_TEXT_CHARS:,} are used.")
    return text[:MAX_TEXT_CHARS]


def sidebar() -> Context:
    name, device = _choose_model()
    with st.sidebar:
        widgets.choice("selectbox", "Model", "model", model_names(), default=registry.DEFAULT_MODEL,
                       help="Which model reads your text. Shipped and packaged models work offline.")
        st.text_input("…or any model on the Hugging Face Hub", key="_hub_repo", on_change=_use_hub_repo,
                      placeholder="e.g. HuggingFaceTB/SmolLM2-360M",
                      help="A GPT-2-, Llama- or BERT-family repo id. It downloads once (when online) into the "
                           "standard Hugging Face cache, so a model you already have from transformers is reused.")
        problem = st.session_state.pop("_hub_problem", None)
        if problem:
            st.warning(problem)
        st.caption(registry.get(name).label)
        widgets.choice("radio", "Device", "device", device_choices(), horizontal=True)
        text = within_limit(widgets.text("text_area", "Your text", "text", DEFAULT_TEXT, BOX_MAX_CHARS, height=110))
        st.selectbox("…or pick an example", EXAMPLES, key="_example", index=None, on_change=_use_example,
                     placeholder="Examples")
        ctx = Context(name, device, text)
        _token_count(ctx)
        present.toggle()
    return ctx


def context() -> Context:
    """The Context the frame (app.py) made in this run.

    While no session of a fresh server has called st.navigation, Streamlit treats the pages/ folder the old way
    and runs a linked page's script on its own, without app.py. Calling st.navigation switches the process to the
    app's own navigation for good; the rerun then goes through app.py. Should that not happen, the page draws
    the sidebar itself.

    The calling page's globals are recorded (pages/common/pins.py): a page's functions — a fragment, a format_func
    lambda Streamlit keeps with its widget — keep those globals alive after the run, and the traces in them are
    swapped for handles when the run ends."""
    caller = sys._getframe(1).f_globals
    if caller.get("__name__") == "__main__":  # a page script (Streamlit runs each as __main__)
        pins.keep_page_globals(caller)
    if st.session_state.get("_frame"):
        return st.session_state["ctx"]
    if not st.session_state.get("_nav_switched"):
        st.session_state["_nav_switched"] = True
        from pages.common import nav

        st.navigation(nav.pages(), position="hidden")
        st.rerun()
    ctx = sidebar()
    url.show_notices()
    return ctx
