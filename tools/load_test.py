"""A classroom on one server: python -m tools.load_test [--learners 20] [--page attention] [--model tiny-stories-1m]

Starts one Streamlit server (or uses --url, e.g. a load balancer in front of several), then a real Chromium opens
the page as ONE learner (the reference), then as N learners at once, each with a different text (nothing shared
from a cache), and reports the time from opening the page to ready (Streamlit's script idle and every chart drawn):
p50 and p95, the ratio of p95 to the single learner's time, and the server's resident memory (current and peak,
from /proc) when this tool started it. Bounded: every learner gives up after --timeout seconds (counted as failed).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.parse
from pathlib import Path

from tools.bench_browser import UNDRAWN, free_port, start_server

SENTENCES = ["Lily and Tom went to the park", "The little dog found a red ball", "Once upon a time a cat sat",
             "The girl wanted to play outside", "A big bird flew over the house"]


def memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def learner(browser, url: str, timeout_s: float) -> float | None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    start = time.perf_counter()
    try:
        await page.goto(url, wait_until="domcontentloaded")
        await page.wait_for_selector("h1", timeout=timeout_s * 1000)
        deadline, quiet = start + timeout_s, 0
        while time.perf_counter() < deadline:
            idle = await page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').count()
            running = await page.locator('[data-testid="stStatusWidget"]').count()
            quiet = quiet + 1 if idle and not running and await page.evaluate(UNDRAWN) == 0 else 0
            if quiet >= 3:  # three looks in a row, 50 ms apart: not between two runs
                return time.perf_counter() - start - 0.1
            await asyncio.sleep(0.05)
        return None
    finally:
        await context.close()


def page_url(base: str, page: str, model: str, i: int) -> str:
    text = f"{SENTENCES[i % len(SENTENCES)]} (learner {i}, {time.time_ns()})"  # never in a cache
    return f"{base}/{page}?model={model}&text={urllib.parse.quote(text)}"


async def run(base: str, args) -> tuple[float, list[float | None]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        await learner(browser, page_url(base, args.page, args.model, -1), args.timeout)  # warm: the model loaded
        alone = [await learner(browser, page_url(base, args.page, args.model, -2 - r), args.timeout) for r in range(3)]
        crowd = await asyncio.gather(*(learner(browser, page_url(base, args.page, args.model, i), args.timeout)
                                       for i in range(args.learners)))
        await browser.close()
    return statistics.median(t for t in alone if t is not None), list(crowd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--page", default="attention")
    parser.add_argument("--model", default="tiny-stories-1m")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--url", default="", help="an already running server or load balancer")
    args = parser.parse_args(argv)
    server = None if args.url else start_server(free_port())
    base = args.url or f"http://127.0.0.1:{server.args[server.args.index('--server.port') + 1]}"
    try:
        alone, crowd = asyncio.run(run(base, args))
        done = sorted(t for t in crowd if t is not None)
        failed = len(crowd) - len(done)
        p50 = statistics.median(done) if done else float("nan")
        p95 = done[min(len(done) - 1, round(0.95 * (len(done) - 1)))] if done else float("nan")
        print(f"{args.page}, {args.model}: one learner {alone:.2f} s; {args.learners} at once: p50 {p50:.2f} s, "
              f"p95 {p95:.2f} s (p95 = {p95 / alone:.1f}× one learner), {failed} gave up after {args.timeout:g} s")
        if server is not None:
            now, peak = memory_mb(server.pid)
            print(f"server resident memory: {now:.0f} MB now, {peak:.0f} MB at its peak")
    finally:
        if server is not None:
            server.terminate()


if __name__ == "__main__":
    main()
