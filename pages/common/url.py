"""URL state: widget values live in the address bar, and a bad value there is replaced with a visible notice.

Widgets keep their values in the URL through Streamlit's own `bind="query-params"` (the widget's key is the
parameter's name; pages/common/widgets.py binds every widget it makes), so a copied link reopens the same view.
Streamlit silently drops a value its widget cannot take; `check` looks at each parameter the first time a session
meets it and, when the value is refused or out of range, puts a fallback in its place and says why. No path is ever
built from a URL value: a model can only be one of the registry's names.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

Fix = tuple[object, str]  # the value to use instead, and what to tell the learner
Validate = Callable[[str], Fix | None]  # None: the raw URL value is fine for the widget


def ignored(name: str, raw: str, default: object) -> Fix:
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    return default, f"Ignored {name}={shown!r} from the link (not a valid value); using {default!r}."


def check(key: str, validate: Validate) -> str | None:
    """Validate the value the session's link held for `key`, once, before its widget is first drawn: a fix goes
    into session state, where the widget finds it, and its message is returned. Only the link the session opened
    with is checked: later the URL holds what the widgets wrote there themselves (a head chosen on a bigger
    model is no link to warn about when a smaller model is picked)."""
    link = st.session_state.setdefault("_url_link", st.query_params.to_dict())
    seen = st.session_state.setdefault("_url_checked", {})
    raw = link.get(key)
    if raw is None or key in seen:
        return None
    seen[key] = True
    fix = validate(raw)
    if fix is None:
        return None
    st.session_state[key], message = fix
    return message


def value(key: str, default: object) -> object:
    """A bound widget's value before it is drawn: session state, else the (checked) URL, else the default."""
    if key in st.session_state:
        return st.session_state[key]
    return st.query_params.get(key, default)


def notice(message: str) -> None:
    """A message for the top of the page (it survives a rerun)."""
    st.session_state.setdefault("_notices", []).append(message)


def show_notices() -> None:
    for message in st.session_state.pop("_notices", []):
        st.warning(message, icon="⚠️")
