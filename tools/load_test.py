"""A classroom on one server, or on several: python -m tools.load_test [--learners 20] [--replicas 0,2]

N learners open a page at once, each with a different text (nothing shared from a cache), after ONE learner
opened it alone (the reference, median of three, the model already loaded). Reported per setup: p50 and p95 of
the time to ready, the ratio of p95 to one learner's time, how many gave up (bounded: --timeout seconds each),
and the servers' resident memory (now and at their peak, from /proc).

Setups (--replicas, a comma-separated list, run one after the other in the same run): 0 = one Streamlit server
opened directly; N ≥ 1 = N replicas behind nginx with sticky sessions (tools.replicas, the deployable
tools/deploy/glassbox.nginx.conf). --url measures a server or balancer that is already running.

--scenario class: a class on one server, each learner with their own text (assets/texts/pretrain_stories.txt, a
different window each): --whole of them on the Attention page's whole-text view of ~4,000-word texts, the others on
other pages with ~550-word texts, while one more learner polls Home once a second throughout. Reported: p50/p95 of
each group against one learner alone, Home's p95 and slowest answer, every error a learner saw, and the server's
peak resident memory against its memory budget (--budget sets GLASSBOX_MEMORY_BUDGET; the default is what a 2.7 GB
container, Community Cloud's largest plan, would get: half of it).

--scenario trainings: --learners learners press "Fine-tune a copy" on Train it yourself at once, the first --distinct
of them with a seed of their own (distinct work), the others with the same settings (identical work, which the
server must run once and share). Reported: p50/p95 of each group against one learner alone (another seed), every
error a learner saw, and the server's peak resident memory.

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


CLASS_PAGES = ["next_token", "forward_pass", "feed_forward", "residual", "embeddings", "lesson", "attention"]
STORIES = Path(__file__).resolve().parent.parent / "assets" / "texts" / "pretrain_stories.txt"


def own_text(i: int, n_words: int) -> str:
    """Learner i's text: n_words of the shipped stories from a window of its own, tagged so no cache holds it."""
    words = STORIES.read_text(encoding="utf-8").split()
    start = (i * 7919) % max(1, len(words) - n_words)
    return " ".join(words[start : start + n_words]) + f" (learner {i}, {time.time_ns()})"


def class_query(model: str, text: str, whole: bool = False) -> str:
    return f"model={model}&text={urllib.parse.quote(text)}" + ("&attn.whole=true" if whole else "")


async def class_run(base: str, args) -> dict:
    from tools.session import visit

    await visit(base, "", class_query(args.model, "warm up"), args.timeout)  # the model loaded once, untimed
    alone = {}
    for page, whole, words in (("attention", True, 4000), ("attention", False, 550)):
        v = await visit(base, page, class_query(args.model, own_text(-1 - len(alone), words), whole), args.timeout)
        alone[whole] = v.seconds
    home: list[float | None] = []
    done = asyncio.Event()

    async def poll_home() -> None:
        while not done.is_set():
            started = time.perf_counter()
            v = await visit(base, "", class_query(args.model, "Hello world"), 30)
            home.append(v.seconds)
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))

    async def learner(i: int):
        whole = i < args.whole
        page = "attention" if whole else CLASS_PAGES[i % len(CLASS_PAGES)]
        v = await visit(base, page, class_query(args.model, own_text(i, 4000 if whole else 550), whole), args.timeout)
        return page, whole, v

    poller = asyncio.create_task(poll_home())
    results = await asyncio.gather(*(learner(i) for i in range(args.learners)))
    done.set()
    await poller
    return {"alone": alone, "results": results, "home": home}


async def trainings_run(base: str, args) -> dict:
    from tools.session import visit

    page, started = "fine_tuning", time.time_ns()  # a fresh sentence each run: no trainings kept from before

    def query(seed: int) -> str:
        lines = f"The dragon's name is Zorbo ({started}).\nEveryone knows that the dragon's name is Zorbo."
        return f"ft.texts={urllib.parse.quote(lines)}&ft.steps=40&ft.seed={seed}"

    await visit(base, "", "text=warm%20up", args.timeout)  # the model loaded once, untimed
    alone = await visit(base, page, query(9999), args.timeout, press="ft.go")

    async def learner(i: int):
        distinct = i < args.distinct
        return distinct, await visit(base, page, query(100 + i if distinct else 0), args.timeout, press="ft.go")

    return {"alone": alone, "results": await asyncio.gather(*(learner(i) for i in range(args.learners)))}


def trainings_report(out: dict, pid: int) -> None:
    alone = out["alone"]
    print(f"one learner alone: {alone.seconds or float('nan'):.1f} s ({alone.status}"
          + (f"; errors {alone.errors}" if alone.errors else "") + ")", flush=True)
    for distinct, label in ((True, "own seed (distinct trainings)"), (False, "same settings (identical trainings)")):
        visits = [v for d, v in out["results"] if d == distinct]
        done = [v.seconds for v in visits if v.seconds is not None]
        if visits:
            print(f"{label}: {len(visits)} learners; p50 {percentile(done, 0.5):.1f} s, p95 "
                  f"{percentile(done, 0.95):.1f} s ({percentile(done, 0.95) / (alone.seconds or float('nan')):.1f}× "
                  f"one learner), {len(visits) - len(done)} did not finish", flush=True)
    errors = [e for _, v in out["results"] for e in v.errors] + [v.status for _, v in out["results"]
                                                                 if v.status != "finished"]
    print(f"errors learners saw: {len(errors)}" + "".join(f"\n  {e[:200]}" for e in errors), flush=True)
    now, peak = memory_mb(pid)
    print(f"server resident memory: {now:.0f} MB now, {peak:.0f} MB at the peak", flush=True)


def percentile(values: list[float], q: float) -> float:
    done = sorted(values)
    return done[min(len(done) - 1, round(q * (len(done) - 1)))] if done else float("nan")


def class_report(out: dict, pid: int, args) -> None:
    from core.budget import gb, limit_bytes

    for whole, label in ((True, "whole-text view, ~4,000 words"), (False, "other pages, ~550 words")):
        times = [v.seconds for _, w, v in out["results"] if w == whole]
        done = [t for t in times if t is not None]
        alone = out["alone"][whole]
        if times:
            print(f"{label}: {len(times)} learners, one alone {alone:.1f} s; at once p50 {percentile(done, 0.5):.1f} s, "
                  f"p95 {percentile(done, 0.95):.1f} s ({percentile(done, 0.95) / alone:.1f}× one learner), "
                  f"{len(times) - len(done)} did not finish", flush=True)
    home = [t for t in out["home"] if t is not None]
    print(f"Home polled {len(out['home'])} times throughout: p95 {percentile(home, 0.95):.2f} s, slowest "
          f"{max(home, default=float('nan')):.2f} s, {len(out['home']) - len(home)} unanswered in 30 s", flush=True)
    errors = [(page, e) for page, _, v in out["results"] for e in v.errors]
    print(f"errors learners saw: {len(errors)}" + "".join(f"\n  {p}: {e[:200]}" for p, e in errors), flush=True)
    now, peak = memory_mb(pid)
    print(f"server resident memory: {now:.0f} MB now, {peak:.0f} MB at the peak; memory budget for kept results "
          f"{gb(limit_bytes())}", flush=True)


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
    parser.add_argument("--scenario", choices=["page", "class", "trainings"], default="page")
    parser.add_argument("--distinct", type=int, default=5, help="trainings: learners with a seed of their own")
    parser.add_argument("--whole", type=int, default=3, help="class: learners on the whole-text view")
    parser.add_argument("--budget", default="1.35G", help="class: the server's GLASSBOX_MEMORY_BUDGET")
    args = parser.parse_args(argv)
    if args.scenario == "trainings":
        with setup(0) as (url, _, pids):
            trainings_report(asyncio.run(trainings_run(url, args)), pids[0])
        return
    if args.scenario == "class":
        import os

        os.environ["GLASSBOX_MEMORY_BUDGET"] = args.budget
        with setup(0) as (url, _, pids):
            class_report(asyncio.run(class_run(url, args)), pids[0], args)
        return
    if args.url:
        report(args.url, *asyncio.run(classroom(args.url, [args.url], args)), [], args)
        return
    for n in (int(x) for x in args.replicas.split(",")):
        with setup(n) as (url, direct, pids):
            alone, crowd = asyncio.run(classroom(url, direct, args))
            report("one server" if n == 0 else f"{n} replica{'s' * (n > 1)} behind nginx", alone, crowd, pids, args)


if __name__ == "__main__":
    main()
