"""What a learner's open page pins in the server's memory. A page's module globals outlive its run whenever a function
defined in the page does — its fragments (errors.fragment) rerun with them, and Streamlit keeps a widget's
format_func lambda until the next run; the traces in those globals are swapped for PageTrace handles at the end of
the page's run, so an open page pins no trace of its own
outside the memory budget (core.budget) — SmolLM2 at 768 tokens: 0.2–0.6 GB per learner, measured by counting
live tensors."""

from __future__ import annotations

import threading
from collections.abc import Callable


class PageTrace:
    """A trace a page left in its globals, once the page's run is over: fetched again from the store whenever a
    fragment of the page reruns (the kept trace at once, recomputed if the store let it go)."""

    def __init__(self, fetch: Callable[[], object]):
        self._fetch = fetch

    def __getattr__(self, name: str):
        return getattr(self._fetch(), name)

    def __getitem__(self, name: str):
        return self._fetch()[name]

    def __contains__(self, name: str) -> bool:
        return name in self._fetch()


_run = threading.local()  # this script thread's run: the traces handed out, the page globals fragments keep


def _records() -> dict:
    if not hasattr(_run, "traces"):
        _run.traces, _run.page_globals = {}, {}
    return _run.traces


def handed_out(trace: object, fetch: Callable[[], object]) -> None:
    """Context.trace() handed `trace` to the page; `fetch` gets it again."""
    _records().setdefault(id(trace), (trace, fetch))


def keep_page_globals(namespace: dict) -> None:
    """Called by sidebar.context and errors.fragment: this page's globals may outlive the run."""
    _records()
    _run.page_globals[id(namespace)] = namespace


def unpin_traces() -> None:
    """At the end of a page's full run (app.py): every trace the page left in its globals becomes a PageTrace; then
    this run's records are cleared."""
    traces = _records()
    for namespace in _run.page_globals.values():
        for name, value in list(namespace.items()):
            if id(value) in traces and traces[id(value)][0] is value:
                namespace[name] = PageTrace(traces[id(value)][1])
    _run.traces, _run.page_globals = {}, {}
