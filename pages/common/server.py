"""What the app changes in Streamlit's server, once per process, when app.py first runs; and the heap it freezes.

Streamlit collects garbage after every script run (its runner.postScriptGC setting: gc.collect(2)), which walks
every object the process holds — about 400,000 once torch, plotly, pandas and Streamlit are imported: 0.16 s in a
bare process and ~0.3 s in a serving one, with the GIL held, after every learner's every run (py-spy on a SmolLM2
Attention text change: a third of the server's time). Modules, classes and functions live as long as the process:
at the start of a run, before its page makes anything, `freeze_long_lived` moves what exists out of the collector's
sight when modules were imported since it last did (gc.freeze; reference counting still frees those objects, only
cycles among them would never be collected), so the collection walks what the runs themselves make.

Streamlit 1.67 answers a client's `clear_cache` message (a BackMsg any browser, or any script speaking its
websocket protocol, can send; the developer menu's "Clear cache") by clearing st.cache_data and st.cache_resource
for the WHOLE process: every learner's models and traces are gone, and each flush followed by one SmolLM2
Attention visit cost the server ~550 MB of reloading (issue: a classroom on one shared server). There is no setting
for it. Here the message clears only the sending learner's own session state; the shared caches stay.
"""

from __future__ import annotations

import gc
import logging
import sys

log = logging.getLogger("glassbox")
streamlit_handler = None  # Streamlit's own AppSession._handle_clear_cache_request, kept when harden() replaces it


def _clear_own_session_only(self) -> None:
    """AppSession._handle_clear_cache_request, limited to the session that asked."""
    log.info("a client asked to clear the caches: only its own session state was cleared")
    self._session_state.clear()


def harden() -> None:
    """Apply the changes above (idempotent), and tune the allocator (core.budget.tune_allocator)."""
    from streamlit.runtime.app_session import AppSession

    from core.budget import tune_allocator

    if getattr(AppSession._handle_clear_cache_request, "__name__", "") == _clear_own_session_only.__name__:
        return
    tune_allocator()  # once per process (the first run, before learners' work allocates)
    if not hasattr(AppSession, "_handle_clear_cache_request"):  # a Streamlit that handles it elsewhere
        log.warning("Streamlit has no AppSession._handle_clear_cache_request: a client's clear_cache message may "
                    "flush every learner's caches")
        return
    global streamlit_handler
    streamlit_handler = AppSession._handle_clear_cache_request
    AppSession._handle_clear_cache_request = _clear_own_session_only


_modules_frozen = 0  # len(sys.modules) at the last freeze


def freeze_long_lived() -> None:
    """gc.freeze() when modules were imported since the last call (see above): a bounded number of times per
    process — the run after a page first imported something of its own — never once per run. The garbage there is
    is collected first: a frozen cycle would never be."""
    global _modules_frozen
    if len(sys.modules) != _modules_frozen:
        _modules_frozen = len(sys.modules)
        gc.collect()
        gc.freeze()
