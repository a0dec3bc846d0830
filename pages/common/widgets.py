"""Widget helpers: every control a page draws keeps its value in the URL (pages/common/url.py) and in the session
across page switches, refuses bad link values with a notice, and clamps numbers into what this model has.

A page adds a shareable setting by drawing it through one of these with a namespaced key (`"pos.seed"`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import streamlit as st

from core.loading import registry
from pages.common import url

BIND = {"bind": "query-params", "persist_state": "session"}


def _draw(kind: str, label: str, key: str, default: object, validate: url.Validate, where=None, **kwargs):
    message = url.check(key, validate)
    if message:
        (where or st).warning(message, icon="⚠️")
    if key in st.session_state:
        # Re-assigned before every draw: Streamlit's widget ids include the page script being run, and a widget
        # with a new id would otherwise start from its empty default (the sidebar's text was lost this way).
        st.session_state[key] = st.session_state[key]
    elif key not in st.query_params:
        st.session_state[key] = default
    return getattr(where or st, kind)(label, key=key, **BIND, **kwargs)


def _clamped(label: str, value: float, lo: float, hi: float, scope: str) -> url.Fix:
    fixed = min(max(value, lo), hi)
    return fixed, f"{label} {value} does not exist {scope}; showing {fixed} (range {lo}–{hi})."


def _in_range(label: str, key: str, kind: type, lo: float, hi: float, default: object, clamp: str | None
              ) -> url.Validate:
    def validate(raw: str) -> url.Fix | None:
        try:
            number = kind(raw)
        except (ValueError, OverflowError):
            return url.ignored(key, raw, default)
        if not math.isfinite(number):
            return url.ignored(key, raw, default)
        if lo <= number <= hi:
            return None
        return _clamped(label, number, lo, hi, clamp) if clamp else url.ignored(key, raw, default)

    return validate


def slider(label: str, key: str, lo: float, hi: float, default: float, clamp: str | None = None, where=None,
           **kwargs):
    """A bound slider of ints or floats (the type of `lo`). With clamp (a scope such as "for this model"), a value
    outside [lo, hi] — from a link, or kept from a model with more layers — is moved inside with a notice."""
    kind = type(lo)
    stored = st.session_state.get(key)
    if clamp and isinstance(stored, (int, float)) and not lo <= stored <= hi:
        st.session_state[key], message = _clamped(label, stored, lo, hi, clamp)
        (where or st).warning(message, icon="⚠️")
    if clamp and hi == lo:
        (where or st).caption(f"{label}: {lo} (the only one)")
        return lo
    return _draw("slider", label, key, default, _in_range(label, key, kind, lo, hi, default, clamp), where,
                 min_value=lo, max_value=hi, **kwargs)


def number(label: str, key: str, lo: int, hi: int, default: int, where=None, **kwargs) -> int:
    return _draw("number_input", label, key, default, _in_range(label, key, int, lo, hi, default, None), where,
                 min_value=lo, max_value=hi, step=1, **kwargs)


def choice(kind: str, label: str, key: str, options: Sequence, default=None, format_func: Callable = str,
           where=None, **kwargs):
    """A bound selectbox, radio or select_slider (`kind`). The URL holds the option as shown (format_func)."""
    shown = [format_func(o) for o in options]
    default = options[0] if default is None else default

    def validate(raw: str) -> url.Fix | None:
        return None if raw in shown else url.ignored(key, raw, default)

    if st.session_state.get(key, default) not in options:  # the options changed (another text, another model)
        st.session_state[key] = default
    return _draw(kind, label, key, default, validate, where, options=options, format_func=format_func, **kwargs)


def text(kind: str, label: str, key: str, default: str, max_chars: int, where=None, **kwargs) -> str:
    """A bound text_input or text_area; a longer text from a link is cut to max_chars, with a notice."""

    def validate(raw: str) -> url.Fix | None:
        if len(raw) <= max_chars:
            return None
        return raw[:max_chars], f"The text in the link was {len(raw):,} characters; the first {max_chars:,} are used."

    return _draw(kind, label, key, default, validate, where, max_chars=max_chars, **kwargs)


def toggle(label: str, key: str, default: bool = False, where=None) -> bool:
    def validate(raw: str) -> url.Fix | None:
        return None if raw.lower() in ("true", "false") else url.ignored(key, raw, default)

    return _draw("toggle", label, key, default, validate, where)


def layer_head(model_name: str, n_layers: int, n_heads: int, columns: bool = True) -> tuple[int, int]:
    """Layer and head sliders whose choice is kept per model: a model with fewer layers never overwrites another
    model's choice. In the URL they are `layer` and `head`."""
    memory = st.session_state.setdefault("_layer_head", {})  # model name → [layer, head]
    if st.session_state.get("_layer_head_model") != model_name:
        st.session_state["_layer_head_model"] = model_name
        if model_name in memory:
            st.session_state["layer"], st.session_state["head"] = memory[model_name]
    c1, c2 = st.columns(2) if columns else (None, None)
    layer = slider("Layer", "layer", 0, n_layers - 1, 0, clamp="for this model", where=c1)
    head = slider("Head", "head", 0, n_heads - 1, 0, clamp="for this model", where=c2)
    memory[model_name] = [layer, head]
    return layer, head


def reset_on_change(key: str, owner: str, default: object) -> None:
    """Put `key` back to its default when what it belongs to (`owner`: the text, the chosen word) changes; a value
    from a link, met before any owner, is kept."""
    owners = st.session_state.setdefault("_owners", {})
    if key in owners and owners[key] != owner:
        st.session_state[key] = default
    owners[key] = owner


def need_text(text_: str) -> None:
    """Pages that need tokens stop here, kindly, when the text is empty."""
    if not text_:
        st.info("Type a sentence in the sidebar (or pick an example) to see what the model does with it.")
        st.stop()


def download_csv(columns: dict[str, list] | Callable[[], dict[str, list]], filename: str,
                 label: str = "Download the numbers (CSV)") -> None:
    """The numbers behind a page's main chart, as a CSV file. `columns` may be a function that makes them: then
    nothing is built until the button is clicked (a name for each of SmolLM2's 49,152 tokens took 0.28 s a run)."""
    import pandas as pd

    def make() -> bytes:  # built only when the button is clicked: writing the CSV on every rerun cost ~120 ms
        return pd.DataFrame(columns() if callable(columns) else columns).to_csv(index=False).encode("utf-8")

    st.download_button(label, make, file_name=filename, mime="text/csv", key=f"csv.{filename}")


def open_page(url_path: str, label: str, key: str, where=None, model_name: str | None = None,
              **settings: object) -> None:
    """A button that opens another page with some of its settings chosen (e.g. layer=3): the settings go into the
    session before the switch, so the page draws them (and puts them in the URL) as if the learner had."""
    from pages.common.nav import PAGES

    spec = next(p for p in PAGES if p.url_path == url_path)

    def go() -> None:
        for name, value in settings.items():
            st.session_state[name] = value
        if model_name is not None and "layer" in settings:  # layer_head's per-model memory
            memory = st.session_state.setdefault("_layer_head", {})
            memory[model_name] = [settings["layer"], settings.get("head", memory.get(model_name, [0, 0])[1])]
            st.session_state["head"] = memory[model_name][1]

    if (where or st).button(label, key=key, on_click=go, icon=spec.icon):
        # An empty mapping, not None: switch_page(None) refuses to clear parameters bound to widgets. The bound
        # widgets (model, text, the settings above) write themselves back into the URL on the new page.
        st.switch_page(spec.path, query_params={})


def multi(label: str, key: str, options: Sequence[str], where=None, **kwargs) -> list[str]:
    """A bound multiselect of strings; options that no longer exist (another model) are dropped."""
    kept = [o for o in st.session_state.get(key, []) if o in options]
    if key in st.session_state and kept != st.session_state[key]:
        st.session_state[key] = kept

    def validate(raw: str) -> url.Fix | None:
        return None if raw in options else url.ignored(key, raw, [])

    return _draw("multiselect", label, key, [], validate, where, options=list(options), **kwargs)


def need_a_decoder(cfg, why) -> None:
    """Stops the page on an encoder, which predicts no next token to patch, steer, explain or be surprised by;
    `why(decoder_names)` says so and names the models that do."""
    if not cfg.lm_head:
        st.info(why([e.name for e in registry.entries() if e.kind == "decoder"]), icon="ℹ️")
        st.stop()
