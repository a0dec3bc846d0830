"""A learner without a browser: opens a page over Streamlit's own websocket protocol (not a pytest test).

What a server does for one learner, measured without the learner's browser: in a classroom every learner draws the
charts on their own laptop, so a load test that runs twenty Chromiums on the server's machine charges the server
for work it never does. `visit` does what Streamlit's front end does when a page opens — an HTTP GET of the page
(which sets the cookies: Streamlit's XSRF token, a load balancer's route), then the websocket `/_stcore/stream`
with those cookies and one `rerun_script` message carrying the page and its query string — and waits for the
script run to finish. It reports the seconds from the GET to the finished run, the bytes the server sent, and the
cookies it was given. Uses Streamlit's own protobuf messages and the `websockets` package Streamlit's server
already needs.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

FINISHED = {0: "finished", 1: "compile error"}  # ForwardMsg.ScriptFinishedStatus; 2 = early for a rerun, 3 = fragment


@dataclass
class Visit:
    seconds: float | None  # None: gave up (timeout) or the run did not finish successfully
    sent_bytes: int = 0
    cookies: dict[str, str] = field(default_factory=dict)
    status: str = ""
    errors: list[str] = field(default_factory=list)  # the page's error boxes and exceptions, as a learner reads them


def _get(url: str, cookies: dict[str, str]) -> dict[str, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    request = urllib.request.Request(url, headers={"Cookie": _cookie_header(cookies)} if cookies else {})
    with opener.open(request, timeout=60) as response:
        response.read()
    return {**cookies, **{c.name: c.value for c in jar}}


def _cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def _note_error(element, errors: list[str]) -> None:
    from streamlit.proto.Alert_pb2 import Alert

    kind = element.WhichOneof("type")
    if kind == "exception":
        errors.append(f"{element.exception.type}: {element.exception.message}")
    elif kind == "alert" and element.alert.format == Alert.ERROR:
        errors.append(element.alert.body)


async def visit(base: str, page: str, query: str, timeout_s: float = 180, cookies: dict[str, str] | None = None,
                press: str | None = None) -> Visit:
    """Open `base/page?query` as a new learner (or one holding `cookies`) and wait for the page's script run.
    press: the key of a button the learner then clicks (e.g. "ft.go"): the click's run is waited for too, as
    Streamlit's front end sends it (a rerun carrying the button's trigger)."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    query = urllib.parse.quote(query, safe="=&%+")  # as a browser's address bar sends it
    start = time.perf_counter()
    try:
        got = await asyncio.to_thread(_get, f"{base}/{page}?{query}", dict(cookies or {}))
    except urllib.error.HTTPError as error:  # e.g. 400 for an address longer than the server takes
        return Visit(None, status=f"HTTP {error.code}")
    protocols = ["streamlit"] + ([got["_streamlit_xsrf"]] if "_streamlit_xsrf" in got else [])
    result = Visit(None, cookies=got, status="timed out")

    async def run() -> None:
        async with websockets.connect(base.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=protocols,
                                      max_size=None,
                                      additional_headers={"Cookie": _cookie_header(got)} if got else None) as ws:
            message = BackMsg()
            message.rerun_script.query_string = query
            message.rerun_script.page_name = page
            await ws.send(message.SerializeToString())
            button, pressed = None, press is None
            while True:
                raw = await ws.recv()
                result.sent_bytes += len(raw)
                forward = ForwardMsg()
                forward.ParseFromString(raw)
                if forward.WhichOneof("type") == "delta" and forward.delta.WhichOneof("type") == "new_element":
                    element = forward.delta.new_element
                    _note_error(element, result.errors)
                    if press and element.WhichOneof("type") == "button" and element.button.id.endswith(f"-{press}"):
                        button = element.button.id
                if forward.WhichOneof("type") == "script_finished" and forward.script_finished in FINISHED:
                    result.status = FINISHED[forward.script_finished]
                    if pressed:
                        return
                    if button is None:
                        result.status = f"no button {press!r} on the page"
                        return
                    click = BackMsg()
                    click.rerun_script.query_string = query
                    click.rerun_script.page_name = page
                    click.rerun_script.widget_states.widgets.add(id=button, trigger_value=True)
                    await ws.send(click.SerializeToString())
                    pressed = True

    try:
        await asyncio.wait_for(run(), timeout_s)
    except asyncio.TimeoutError:
        return result
    if result.status == "finished":
        result.seconds = time.perf_counter() - start
    return result
