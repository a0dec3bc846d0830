"""A classroom on one server, or on several: python -m tools.load_test [--learners 20] [--replicas 0,2]

N learners open a page at once, each with a different text (nothing shared from a cache), after ONE learner
opened it alone (the reference, median of three, the model already loaded). Reported per setup: p50 and p95 of
the time to ready, the ratio of p95 to one learner's time, how many gave up (bounded: --timeout seconds each),
and the servers' resident memory (now and at their peak, from /proc).

Setups (--replicas, a comma-separated list, run one after the other in the same run): 0 = one Streamlit server
opened directly; N ≥ 1 = N replicas behind nginx with sticky sessions (tools.replicas, the deployable
tools/deploy/glassbox.nginx.conf). --url measures a server or balancer that is already running.

Learners (--clients):
- protocol (default): Streamlit's own websocket protocol (tools.session); ready = the page's script run finished.
  This is the server's share of the wait: in a classroom each learner's browser draws on the learner's laptop.
- browser: real Chromium pages on this machine; ready = script idle and every chart drawn. The browsers then share
  this machine's cores with the server(s), so the figure charges the server for the learners' drawing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

from tools.bench_browser import UNDRAWN, free_port, start_server

SENTENCES = ["Lily and Tom went to the park", "The little dog found a red ball", "Once upon a time a cat sat",
             "The girl wanted to play outside", "A big bird flew over the house"]


def memory_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def browser_learner(browser, base: str, page_path: str, query: str, timeout_s: float) -> float | None:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    start = time.perf_counter()
    try:
        await page.goto(f"{base}/{page_path}?{query}", wait_until="domcontentloaded")
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


def query(model: str, i: int) -> str:
    text = f"{SENTENCES[i % len(SENTENCES)]} (learner {i}, {time.time_ns()})"  # never in a cache
    return f"model={model}&text={urllib.parse.quote(text)}"


async def classroom(base: str, warm: list[str], args) -> tuple[float, list[float | None]]:
    """One learner alone (median of 3, after each replica has loaded the model), then N at once."""
    if args.clients == "browser":
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=["--headless", "--no-sandbox"])
            one = lambda url, i: browser_learner(browser, url, args.page, query(args.model, i), args.timeout)  # noqa: E731
            return await _measure(one, base, warm, args)
    from tools.session import visit

    async def one(url: str, i: int) -> float | None:
        return (await visit(url, args.page, query(args.model, i), args.timeout)).seconds

    return await _measure(one, base, warm, args)


async def _measure(one, base: str, warm: list[str], args) -> tuple[float, list[float | None]]:
    for i, url in enumerate(warm):  # every replica directly: the model loaded everywhere before timing
        await one(url, -1 - i)
    alone = [await one(base, -10 - r) for r in range(3)]
    crowd = await asyncio.gather(*(one(base, i) for i in range(args.learners)))
    return statistics.median(t for t in alone if t is not None), list(crowd)


@contextmanager
def setup(n: int):
    """(url learners open, direct url of each server, server pids)."""
    if n == 0:
        server = start_server(free_port())
        url = f"http://127.0.0.1:{server.args[server.args.index('--server.port') + 1]}"
        try:
            yield url, [url], [server.pid]
        finally:
            server.terminate()
            server.wait(timeout=30)
        return
    from tools.replicas import replicas

    with replicas(n) as r:
        yield r.url, [f"http://127.0.0.1:{port}" for port in r.ports], [s.pid for s in r.servers]


def report(name: str, alone: float, crowd: list[float | None], pids: list[int], args) -> None:
    done = sorted(t for t in crowd if t is not None)
    p50 = statistics.median(done) if done else float("nan")
    p95 = done[min(len(done) - 1, round(0.95 * (len(done) - 1)))] if done else float("nan")
    print(f"{name}: {args.page}, {args.model}, {args.clients} learners: one learner {alone:.2f} s; "
          f"{args.learners} at once: p50 {p50:.2f} s, p95 {p95:.2f} s (p95 = {p95 / alone:.1f}× one learner), "
          f"{len(crowd) - len(done)} gave up after {args.timeout:g} s", flush=True)
    if pids:
        rss = [memory_mb(pid) for pid in pids]
        print(f"  server resident memory: {' + '.join(f'{now:.0f}' for now, _ in rss)} MB now, "
              f"{' + '.join(f'{peak:.0f}' for _, peak in rss)} MB at the peak", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--page", default="attention")
    parser.add_argument("--model", default="tiny-stories-1m")
    parser.add_argument("--clients", choices=["protocol", "browser"], default="protocol")
    parser.add_argument("--replicas", default="0", help="comma-separated: 0 = one server opened directly, "
                                                        "N = N replicas behind nginx")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--url", default="", help="an already running server or load balancer")
    args = parser.parse_args(argv)
    if args.url:
        report(args.url, *asyncio.run(classroom(args.url, [args.url], args)), [], args)
        return
    for n in (int(x) for x in args.replicas.split(",")):
        with setup(n) as (url, direct, pids):
            alone, crowd = asyncio.run(classroom(url, direct, args))
            report("one server" if n == 0 else f"{n} replica{'s' * (n > 1)} behind nginx", alone, crowd, pids, args)


if __name__ == "__main__":
    main()
