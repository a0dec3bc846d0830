"""What a learner sees when something fails: a clear message on the page, never a traceback. Failures Glassbox
expects (a damaged file, broken numbers, no network) say what happened in a sentence and go to the server log as
one line; anything else is a bug: a friendly message here, the traceback in the server log for whoever runs it."""

from __future__ import annotations

import functools
import logging
import os

import streamlit as st

from core.integrity import DamagedFile, NonFinite

log = logging.getLogger("glassbox")
EXPECTED = (DamagedFile, NonFinite, ConnectionError)


def report(err: Exception) -> None:
    if isinstance(err, EXPECTED):
        log.warning("%s: %s", type(err).__name__, err)
        st.error(str(err), icon="🛠️")
        return
    if os.environ.get("GLASSBOX_RAISE_BUGS") == "1":  # the test suite: a bug must fail its test, not hide
        raise err
    log.error("Uncaught error on a page", exc_info=err)
    st.error("Something went wrong on this page, and it is not your fault. Try another text or model; if it keeps "
             "happening, whoever runs this app will find the details in the server's log.", icon="🛠️")


def fragment(draw):
    """st.fragment for the part of a page that its own widgets change: moving one of them reruns only that part (not
    the sidebar, the trace lookup and every other chart). A fragment's own rerun does not pass through app.py, so a
    failure in it is reported here, the same way."""

    @functools.wraps(draw)
    def guarded(*args, **kwargs):
        try:
            return draw(*args, **kwargs)
        except Exception as err:  # st.stop and st.rerun are not Exceptions: they pass through
            report(err)

    return st.fragment(guarded)
