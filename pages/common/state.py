"""Shared state: URL parameters (validated once per session), the sidebar, and numeric controls that clamp.

A URL carries text, model, device, layer, head, temperature, top_k, top_p and seed; the page is the URL path.
Values are parsed and checked when a session starts: garbage or out-of-range values fall back to defaults with a
notice, and a model can only be one of the known names (no path is ever built from a URL value). At the end of
every run the current values are written back, so a copied URL reopens the same view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st
import torch

from core import packaged
from core.trace import token_limit
from core.weights import DEFAULT_MODEL, HUB_MODELS, fetch, shipped_models
from pages.common import cache

MAX_TEXT_CHARS = 20_000
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


def model_choices() -> list[str]:
    """Shipped models, the Hub's GPT-2 family, and the pip-packaged ones that are installed."""
    return shipped_models() + list(HUB_MODELS) + packaged.available()


def model_label(name: str) -> str:
    if name == DEFAULT_MODEL:
        return f"{name} (embedded, offline)"
    if name in HUB_MODELS:
        return f"{name} (Hugging Face Hub, downloads once)"
    if name in packaged.PACKAGED:
        return f"{name} (offline, pip package: {packaged.PACKAGED[name][2]})"
    return name


def device_choices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _float(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError
        return value

    return parse


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not lo <= value <= hi:
            raise ValueError
        return value

    return parse


def _choice(options: Callable[[], list[str]]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in options():
            raise ValueError
        return raw

    return parse


# name → (parser that raises ValueError on bad input, default). Layer and head are range-checked per model later.
PARAMS: dict[str, tuple[Callable[[str], object], object]] = {
    "text": (str, DEFAULT_TEXT),
    "model": (_choice(model_choices), DEFAULT_MODEL),
    "device": (_choice(device_choices), "cpu"),
    "layer": (_int(-(10**6), 10**6), 0),
    "head": (_int(-(10**6), 10**6), 0),
    "temperature": (_float(0.0, 2.0), 1.0),
    "top_k": (_int(0, 1000), 0),
    "top_p": (_float(0.0, 1.0), 1.0),
    "seed": (_int(0, 2**31 - 1), 0),
}


def notice(message: str) -> None:
    st.session_state.setdefault("_notices", []).append(message)


def show_notices() -> None:
    for message in st.session_state.pop("_notices", []):
        st.warning(message, icon="⚠️")


def read_url_once() -> None:
    """Seed session state from the URL when a session starts; bad values fall back with a notice."""
    if st.session_state.get("_url_read"):
        return
    st.session_state["_url_read"] = True
    for name, (parse, default) in PARAMS.items():
        raw = st.query_params.get(name)
        value = default
        if raw is not None:
            if name == "text" and len(raw) > MAX_TEXT_CHARS:
                notice(f"The text in the link was {len(raw):,} characters; the first {MAX_TEXT_CHARS:,} are used.")
                raw = raw[:MAX_TEXT_CHARS]
            try:
                value = parse(raw)
            except (ValueError, TypeError, OverflowError):
                shown = raw if len(raw) <= 40 else raw[:40] + "…"
                notice(f"Ignored {name}={shown!r} from the link (not a valid value); using {default!r}.")
        st.session_state.setdefault(name, value)


def write_url() -> None:
    """Put the current non-default values in the URL, so a copied link reopens this view."""
    params = {}
    for name, (_, default) in PARAMS.items():
        value = st.session_state.get(name, default)
        if value != default:
            params[name] = str(value)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)


def clamped_int(label: str, key: str, lo: int, hi: int, widget: str = "slider", help: str | None = None) -> int:
    """A numeric control whose stored value (from a link or another model) is clamped into [lo, hi] first."""
    value = st.session_state.get(key, lo)
    if not isinstance(value, int) or not lo <= value <= hi:
        fixed = min(max(int(value) if isinstance(value, int) else lo, lo), hi)
        st.warning(f"{label} {value} does not exist for this model; showing {fixed} (range {lo}–{hi}).", icon="⚠️")
        st.session_state[key] = fixed
    if hi == lo:
        st.caption(f"{label}: {lo} (the only one)")
        return lo
    if widget == "number":
        return st.number_input(label, lo, hi, key=key, step=1, help=help)
    return st.slider(label, lo, hi, key=key, help=help)


@dataclass
class Context:
    """What every page needs: the chosen model and the text, plus cached traces of it."""

    model_name: str
    device: str
    text: str

    @property
    def model(self):
        return cache.model(self.model_name, self.device)

    def trace(self, text: str | None = None, **options):
        return cache.traced(self.model_name, self.device, self.text if text is None else text, **options)


def _load_with_progress(name: str, device: str) -> bool:
    """Load (or fetch from cache) a model; on failure keep the previous one and say why."""
    bar = st.sidebar.empty()

    def progress(frac: float, message: str) -> None:
        bar.progress(frac, text=message)

    try:
        fetch(name, progress)  # download / convert outside the cached loader, so the bar can be drawn
        cache.model(name, device)
        return True
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as err:
        st.sidebar.error(f"Could not load {name}: {err}")
        return False
    finally:
        bar.empty()


def _use_example() -> None:
    st.session_state["text"] = st.session_state["_example"]


def keep_values() -> None:
    """Re-assign the shared keys each run: Streamlit drops a widget's value on a run where that widget is not
    drawn (another page), and re-assigned keys survive page switches."""
    for name in PARAMS:
        if name in st.session_state:
            st.session_state[name] = st.session_state[name]


def sidebar() -> Context:
    read_url_once()
    keep_values()
    ok = st.session_state.get("_loaded", (DEFAULT_MODEL, "cpu"))
    wanted = (st.session_state["model"], st.session_state["device"])
    if wanted != ok:
        if _load_with_progress(*wanted):
            st.session_state["_loaded"] = wanted
        else:
            st.session_state["model"], st.session_state["device"] = ok
    with st.sidebar:
        st.selectbox("Model", model_choices(), key="model", format_func=model_label)
        st.radio("Device", device_choices(), key="device", horizontal=True)
        st.text_area("Your text", key="text", max_chars=MAX_TEXT_CHARS, height=110)
        st.selectbox("…or pick an example", EXAMPLES, key="_example", index=None, on_change=_use_example,
                     placeholder="Examples")
        ctx = Context(st.session_state["model"], st.session_state["device"], st.session_state["text"])
        model = ctx.model
        if model.tokenizer is not None:
            n = len(model.tokenizer.encode(ctx.text))
            limit = token_limit(model.config)
            st.caption(f"{n} tokens · context length {model.config.n_ctx}")
            if n > limit < model.config.n_ctx:
                st.warning(f"Only the first {limit} of {n} tokens are analysed: this model reads up to "
                           f"{model.config.n_ctx}, but recording all its attention weights for more would take too "
                           "much memory here.", icon="✂️")
            elif n > model.config.n_ctx:
                st.warning(f"Only the first {model.config.n_ctx} of {n} tokens are shown: that is all this model "
                           "can read at once.", icon="✂️")
    return ctx


def context() -> Context:
    """The Context the frame (app.py) made in this run.

    While no session of a fresh server has called st.navigation, Streamlit treats the pages/ folder the old way
    and runs a linked page's script on its own, without app.py. Calling st.navigation switches the process to the
    app's own navigation for good; the rerun then goes through app.py. Should that not happen, the page draws
    the sidebar itself."""
    if st.session_state.get("_frame"):
        return st.session_state["ctx"]
    if not st.session_state.get("_nav_switched"):
        st.session_state["_nav_switched"] = True
        from pages.common import nav

        st.navigation(nav.pages(), position="hidden")
        st.rerun()
    ctx = sidebar()
    show_notices()
    write_url()
    return ctx


def need_text(ctx: Context) -> None:
    """Pages that need tokens stop here, kindly, when the text is empty."""
    if not ctx.text:
        st.info("Type a sentence in the sidebar (or pick an example) to see what the model does with it.")
        st.stop()


def download_csv(columns: dict[str, list], filename: str, label: str = "Download the numbers (CSV)") -> None:
    """The numbers behind a page's main chart, as a CSV file."""
    import pandas as pd

    def make() -> bytes:  # built only when the button is clicked: writing the CSV on every rerun cost ~120 ms
        return pd.DataFrame(columns).to_csv(index=False).encode("utf-8")

    st.download_button(label, make, file_name=filename, mime="text/csv", key=f"csv.{filename}")
