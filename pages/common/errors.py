"""What a learner sees when something fails: a clear message on the page, never a traceback. Failures Glassbox
expects (a damaged file, broken numbers, no network) say what happened in a sentence and go to the server log as
one line; anything else is a bug: a friendly message here, the traceback in the server log for whoever runs it."""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path

import streamlit as st

from core.budget import TooBig
from core.loading.chat_template import TemplateRefused
from core.loading.integrity import DamagedFile, NonFinite
from core.tokenizer import TokenizerFailed, is_panic
from pages.common import pins

log = logging.getLogger("glassbox")
EXPECTED = (DamagedFile, NonFinite, ConnectionError, TemplateRefused, TokenizerFailed, TooBig)
__all__ = ["EXPECTED", "fragment", "is_panic", "report", "without_paths"]

# A file in the Hugging Face cache: …/models--org--name/snapshots/<revision>/file → org/name/file
HF_SNAPSHOT = re.compile(r"\S*?models--([^/\\\s]+?)--([^/\\\s]+)[/\\]snapshots[/\\][0-9a-f]+([/\\]?)")


def without_paths(message: str) -> str:
    """A message for the learner with the server's folders taken out: a Hub file as "org/name/file", the model
    cache as "the server's model cache", the home folder as "~". The server log keeps the full message."""
    from core.loading.weights import cache_dir

    message = HF_SNAPSHOT.sub(lambda m: f"{m[1]}/{m[2]}" + ("/" if m[3] else ""), message)
    message = re.sub(re.escape(str(cache_dir())) + r"[^\s:;,)]*", "the server's model cache", message)
    home = str(Path.home())
    return message.replace(home, "~") if len(home) > 1 else message


def report(err: BaseException) -> None:
    if is_panic(err):  # a native library's panic that no tokenizer guard turned into TokenizerFailed
        first = (str(err).strip().splitlines() or [""])[0][:200]
        err = TokenizerFailed(f"A native library failed on this text ({first}): the model's tokenizer is broken "
                              "for it. Try another text or model.")
    if isinstance(err, EXPECTED):
        log.warning("%s: %s", type(err).__name__, err)
        st.error(without_paths(str(err)), icon="🛠️")
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

    pins.keep_page_globals(draw.__globals__)

    @functools.wraps(draw)
    def guarded(*args, **kwargs):
        try:
            return draw(*args, **kwargs)
        except Exception as err:  # st.stop and st.rerun are not Exceptions: they pass through
            report(err)
        except BaseException as err:  # a Rust panic is a BaseException too
            if not is_panic(err):
                raise
            report(err)

    return st.fragment(guarded)
