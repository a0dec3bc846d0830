"""Real browser: `streamlit run app.py` on a free localhost port, every page opened in Debian's Chromium through
Playwright with every non-localhost request blocked. Asserts no exception element, rendered plotly charts and
bertviz views, no script injection, and no traceback in the server's log during any test; saves a screenshot per
page in tests/screenshots/.

Skipped (with the reason) only when chromium or Playwright is missing and GLASSBOX_REQUIRE_BROWSER is unset;
.ci/run sets it, so CI never skips these.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REQUIRED = os.environ.get("GLASSBOX_REQUIRE_BROWSER") == "1"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

if not (Path(CHROMIUM).exists() and sync_playwright):
    if REQUIRED:
        raise RuntimeError("browser tests are required here but chromium or playwright is missing")
    pytest.skip("Debian chromium or the playwright package is not installed", allow_module_level=True)

from pages.common.nav import PAGES as SPECS  # noqa: E402

pytestmark = pytest.mark.slow  # a real server and browser: minutes

# what must be drawn beyond the defaults (a plotly chart); Train it yourself draws after a click (its own test)
DRAWN = {"attention?attn.bertviz=true": ["plotly", "bertviz"], "": [], "fine_tuning": [], "lesson": [], "quiz": []}
PAGES = {p.url_path: DRAWN.get(p.url_path, ["plotly"]) for p in SPECS}  # the navigation's own list
PAGES["attention?attn.bertviz=true"] = DRAWN["attention?attn.bertviz=true"]  # bertviz is drawn on request
LOCAL = ("localhost", "127.0.0.1", "[::1]")
SERVER_LOG = Path(tempfile.gettempdir()) / f"glassbox-browser-test-server-{os.getpid()}.log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=SERVER_LOG.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not become healthy: " + SERVER_LOG.read_text(errors="replace")[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    assert_no_traceback(SERVER_LOG.read_text(errors="replace"))  # also what was logged after the last test


def assert_no_traceback(log: str) -> None:
    """An error a learner never sees still means a view went wrong: the server's log must hold no traceback."""
    assert "Traceback" not in log, log[-4000:]


@pytest.fixture(autouse=True)
def server_log_stays_clean(request):
    """Each test that uses the server checks what the server logged while it ran, whatever order tests run in."""
    if "server" not in request.fixturenames:
        yield
        return
    start = SERVER_LOG.stat().st_size if SERVER_LOG.exists() else 0
    yield
    assert_no_traceback(SERVER_LOG.read_bytes()[start:].decode(errors="replace"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"],
        )
        yield b
        b.close()


def new_page(browser, blocked: list[str]):
    context = browser.new_context(viewport={"width": 1400, "height": 2600})
    page = context.new_page()

    def route(r):
        host = urllib.parse.urlsplit(r.request.url).hostname or ""
        if r.request.url.startswith(("data:", "blob:", "about:")) or host in LOCAL or f"[{host}]" in LOCAL:
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return page


def settle(page, timeout_s: float = 90) -> None:
    """Wait until Streamlit has finished running the script (no status widget, no skeletons)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    quiet = 0
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count()
        skeleton = page.locator('[data-testid="stSkeleton"]').count()
        framed = page.locator('[data-testid="stSidebarNav"]', has_text="Home").count()  # the app's own navigation
        titled = page.locator("h1").count()
        quiet = quiet + 1 if framed and titled and not running and not skeleton else 0
        if quiet >= 4:
            return
        time.sleep(0.5)
    raise AssertionError("the app kept running")


def svg_count_in_frames(page) -> int:
    return sum(f.locator("svg").count() for f in page.frames if f != page.main_frame)


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_offline(server, browser, path):
    blocked: list[str] = []
    page = new_page(browser, blocked)
    page.goto(f"{server}/{path}", wait_until="domcontentloaded")
    settle(page)
    if "plotly" in PAGES[path]:
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
        assert page.locator(".js-plotly-plot").count() >= 1
    if "bertviz" in PAGES[path]:
        page.locator("iframe").first.scroll_into_view_if_needed()
        deadline = time.time() + 30
        while svg_count_in_frames(page) == 0 and time.time() < deadline:
            time.sleep(0.5)
        assert svg_count_in_frames(page) > 0, "bertviz drew nothing (offline scripts missing?)"
    assert page.locator('[data-testid="stException"]').count() == 0
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{(path or 'home').replace('?', '_').replace('=', '_')}.png"), full_page=True)
    page.context.close()


def test_no_script_injection(server, browser):
    blocked: list[str] = []
    page = new_page(browser, blocked)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    payload = '<img src=x onerror=alert(1)> </script><script>alert(2)</script> <!-- <b id=injected>x</b>'
    page.goto(f"{server}/attention?text={urllib.parse.quote(payload)}", wait_until="domcontentloaded")
    settle(page)
    time.sleep(2)
    assert not dialogs
    for frame in page.frames:
        assert frame.locator("#injected").count() == 0
        assert frame.locator('img[src="x"]').count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
    page.context.close()


def test_five_simultaneous_pages_each_see_their_own_text(server, browser):
    words = ["dragon", "rocket", "banana", "castle", "puppy"]
    pages = []
    for w in words:  # navigate all five before waiting on any: the server runs them at the same time
        page = new_page(browser, [])
        page.goto(f"{server}/tokenizer?text={urllib.parse.quote(f'The {w} jumped over the moon.')}",
                  wait_until="commit")
        pages.append(page)
    for w, page in zip(words, pages):
        settle(page)
        assert page.locator("textarea").first.input_value() == f"The {w} jumped over the moon."
        shown = page.locator('[data-testid="stMain"]').inner_text()
        assert w in shown  # the gpt2 / cl100k spans keep these common words whole
        assert not any(other in shown for other in words if other != w)
        page.context.close()


def test_typed_html_is_not_injected(server, browser):
    page = new_page(browser, [])
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{server}/tokenizer", wait_until="domcontentloaded")
    settle(page)
    box = page.locator("textarea").first
    payload = '<img src=x onerror=alert(1)> </script><script>alert(2)</script> <b id=injected>x</b>'
    box.fill(payload)
    box.press("Control+Enter")  # Streamlit applies a text area on Ctrl+Enter
    time.sleep(1)
    settle(page)
    assert "text=%3Cimg" in page.url and box.input_value() == payload  # applied, and shown as text…
    assert not dialogs  # …and never run
    for frame in page.frames:
        assert frame.locator("#injected").count() == 0 and frame.locator('img[src="x"]').count() == 0
    page.context.close()


def test_csv_download_is_built_on_click(server, browser):
    """The CSV is made only when the button is clicked (a callable), and holds the numbers of the page's chart."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(f"{server}/attention?text={urllib.parse.quote('Lily and Tom went to the park.')}",
              wait_until="domcontentloaded")
    settle(page)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_text("Download the numbers (CSV)").first.click()
    assert download.value.suggested_filename == "attention.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "query,key,query_pos,key_pos,weight"
    n = int(len(lines[1:]) ** 0.5)
    assert n * n == len(lines) - 1 and n >= 5  # one row per (query, key) pair
    weights = [float(line.rsplit(",", 1)[1]) for line in lines[1:]]
    for q in range(n):  # each query's weights sum to 1
        assert abs(sum(weights[q * n:(q + 1) * n]) - 1) < 1e-3
    context.close()


def test_a_page_setting_goes_into_the_address_and_a_copied_link_reopens_it(server, browser):
    """Widgets bound to the URL (pages/common/widgets.py): moving a control writes the address bar, and opening that
    address in a fresh browser session shows the same setting."""
    page = new_page(browser, [])
    page.goto(f"{server}/positions", wait_until="domcontentloaded")
    settle(page)
    seed = page.get_by_label("Shuffle seed")
    seed.fill("7")
    seed.press("Enter")
    time.sleep(1)
    settle(page)
    assert "pos.seed=7" in page.url, page.url
    link = page.url
    page.context.close()
    fresh = new_page(browser, [])
    fresh.goto(link, wait_until="domcontentloaded")
    settle(fresh)
    assert fresh.get_by_label("Shuffle seed").input_value() == "7"
    fresh.context.close()


def test_generation_tree_rewinds_on_a_click(server, browser):
    """The branches are drawn as a tree; clicking a token rewinds the text to it."""
    page = new_page(browser, [])
    page.goto(f"{server}/next_token", wait_until="domcontentloaded")
    settle(page)
    for _ in range(3):
        page.get_by_text("Sample the next token").click()
        time.sleep(1)
        settle(page)
    generated = page.locator('span[style*="outline:2px"]')
    assert generated.count() == 3
    tree = page.locator(".js-plotly-plot").filter(has=page.locator("text=your text")).first
    tree.scroll_into_view_if_needed()
    node = tree.locator(".scatterlayer .trace").nth(1).locator(".point").nth(1)  # the first generated token
    box = node.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # plotly takes clicks on its drag layer
    time.sleep(1)
    settle(page)
    assert generated.count() == 1
    page.context.close()


def test_model_view_frame_holds_every_chosen_layer(server, browser):
    """Bertviz's model view is not clipped — its frame is as tall as what it draws."""
    page = new_page(browser, [])
    page.goto(f"{server}/attention?attn.bertviz=true", wait_until="domcontentloaded")
    settle(page)
    page.get_by_role("tab", name="Model view").click()
    time.sleep(3)
    shown = [(f, f.frame_element().bounding_box()) for f in page.frames
             if f != page.main_frame and f.locator("svg").count()]
    shown = [(f, box) for f, box in shown if box]  # the hidden head-view tab has no box
    assert shown
    for frame, box in shown:
        content = frame.evaluate("document.documentElement.scrollHeight")
        assert content <= box["height"] + 2, (content, box["height"])
    page.context.close()


def test_hovering_a_token_rings_it_in_every_view(server, browser):
    """Hover a token in one view and every copy of it in the views of the same tokenizer is ringed."""
    page = new_page(browser, [])
    text = urllib.parse.quote("a cat and the dog and the bird")
    page.goto(f"{server}/tokenizer?text={text}", wait_until="domcontentloaded")
    settle(page)
    copies = page.locator('[class*="gb-gpt2-262"]')  # " the" in gpt2's view (the same id twice)
    assert copies.count() >= 2
    copies.first.hover()
    time.sleep(0.5)
    rings = [copies.nth(i).evaluate("e => getComputedStyle(e).boxShadow") for i in range(copies.count())]
    assert all("220, 38, 38" in r for r in rings), rings
    page.context.close()


def test_training_in_a_real_browser(server, browser):
    """Pretraining and fine-tuning run from their buttons, with results drawn and no exception."""
    page = new_page(browser, [])
    page.goto(f"{server}/fine_tuning?pt.steps=300", wait_until="domcontentloaded")
    settle(page)
    page.get_by_role("button", name="Train from scratch").click()
    page.wait_for_selector("text=Look at the model at step", timeout=120_000)
    page.get_by_role("button", name="Fine-tune a copy").click()
    page.wait_for_selector("text=Which weights moved", timeout=120_000)
    settle(page)
    assert page.locator(".js-plotly-plot").count() >= 4
    assert page.get_by_text("unchanged", exact=True).count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(SHOTS / "fine_tuning_trained.png"), full_page=True)
    page.context.close()


def test_translation_in_a_real_browser(server, browser):
    """The encoder–decoder translates, its three attentions are drawn (bertviz too) with nothing fetched
    from outside, and a page that does not apply to it says so."""
    blocked: list[str] = []
    page = new_page(browser, blocked)
    text = urllib.parse.quote("the big red car doesn't see the house")
    page.goto(f"{server}/translation?tr.text={text}&tr.bertviz=true", wait_until="domcontentloaded")
    settle(page)
    page.wait_for_selector("text=la grande voiture rouge ne voit pas la maison", timeout=60_000)
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() >= 5
    page.locator("iframe").first.scroll_into_view_if_needed()
    deadline = time.time() + 30
    while svg_count_in_frames(page) == 0 and time.time() < deadline:
        time.sleep(0.5)
    assert svg_count_in_frames(page) > 0 and not blocked, blocked
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(SHOTS / "translation_bertviz.png"), full_page=True)
    page.goto(f"{server}/attention?model=translator-en-fr", wait_until="domcontentloaded")
    settle(page)
    page.wait_for_selector("text=its views do not apply", timeout=60_000)
    page.context.close()


def test_lesson_by_keyboard_and_presenter_link(server, browser):
    """The lesson moves with the arrow keys and keeps its step in the address bar; a presenter link opens with the
    sidebar folded and large type; a guess is committed before the answer shows."""
    for model in ("tiny-stories-1m", "smollm2-135m", "minilm-l6"):
        page = new_page(browser, [])
        page.goto(f"{server}/lesson?model={model}", wait_until="domcontentloaded")
        settle(page)
        page.get_by_text("Step 1 of").wait_for(timeout=120_000)
        page.locator("h1").first.click()  # focus the page, not a text box
        page.keyboard.press("ArrowRight")
        settle(page)
        page.get_by_text("Step 2 of").wait_for(timeout=120_000)
        assert "lesson.step=2" in page.url
        page.get_by_role("button", name="Skip — just show me").click()  # the tokens appear only after a guess
        settle(page)
        assert page.locator(".st-key-lesson-tokens span[title]").count() >= 3
        for _ in range(3):
            page.keyboard.press("ArrowRight")
            settle(page)
        page.get_by_text("Step 5 of").wait_for(timeout=120_000)
        page.keyboard.press("ArrowLeft")
        settle(page)
        page.get_by_text("Step 4 of").wait_for(timeout=120_000)
        assert "lesson.step=4" in page.url
        assert page.locator('[data-testid="stException"]').count() == 0
        page.context.close()
    page = new_page(browser, [])
    page.goto(f"{server}/lesson?lesson.step=9&present=1", wait_until="domcontentloaded")
    settle(page)
    page.get_by_text("Step 9 of").wait_for(timeout=120_000)
    assert "present=" in page.url  # the link keeps presenter mode
    sidebar = page.evaluate("JSON.stringify(document.querySelector('[data-testid=stSidebar]').getBoundingClientRect())")
    assert json.loads(sidebar)["right"] <= 5, sidebar  # folded away
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('h2')).fontSize)")
    assert size >= 40, size  # presenter type: readable from the back of a room
    page.get_by_role("button", name="The cells above the diagonal: keys that come later").click()
    settle(page)
    assert page.get_by_text("Right:").count() == 1
    page.wait_for_selector(".st-key-quiz-mask-fig .js-plotly-plot .main-svg", timeout=60_000)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "lesson_presenter.png"), full_page=True)
    page.context.close()


def test_charts_and_token_views_download_as_valid_images(server, browser):
    """PNG and SVG come from the visible buttons under a chart, drawn by the browser's own Plotly (nothing fetched
    from outside), named after the model, page, layer and head; the token view as PNG and HTML; CSV from the
    chart's numbers."""
    import xml.etree.ElementTree as ET

    from PIL import Image

    blocked: list[str] = []
    page = new_page(browser, blocked)
    page.goto(f"{server}/attention?layer=1&head=2", wait_until="domcontentloaded")
    settle(page)
    page.wait_for_selector(".st-key-attn-main .js-plotly-plot .main-svg", timeout=60_000)
    files = {}
    for fmt in ("png", "svg", "csv"):
        with page.expect_download(timeout=60_000) as download:
            page.locator(f'button[data-gb-key="attn-main"][data-gb-export="{fmt}"]').click()
        files[fmt] = (download.value.suggested_filename, Path(download.value.path()))
    assert files["png"][0] == "glassbox_tiny-stories-1m_attention_attn-main_L1_H2.png"
    with Image.open(files["png"][1]) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] >= 600
    svg = ET.parse(files["svg"][1]).getroot()
    assert files["svg"][0].endswith("_L1_H2.svg") and svg.tag.endswith("svg") and "Layer 1, head 2" in \
        files["svg"][1].read_text()
    import csv

    rows = list(csv.reader(files["csv"][1].open()))  # the matrix: a header of keys, one row per query
    assert len(rows) >= 6 and all(len(r) == len(rows[0]) for r in rows)
    for row in rows[1:]:  # each query's weights sum to 1 (masked cells are empty)
        assert abs(sum(float(v) for v in row[1:] if v) - 1) < 1e-3
    for model in ("smollm2-135m", "minilm-l6"):  # the other offline models: the same buttons, their own names
        page.goto(f"{server}/attention?model={model}&layer=1&head=2", wait_until="domcontentloaded")
        settle(page)
        page.wait_for_selector(".st-key-attn-main .js-plotly-plot .main-svg", timeout=120_000)
        for fmt in ("png", "svg"):
            with page.expect_download(timeout=60_000) as download:
                page.locator(f'button[data-gb-key="attn-main"][data-gb-export="{fmt}"]').click()
            assert download.value.suggested_filename == f"glassbox_{model}_attention_attn-main_L1_H2.{fmt}"
            path = Path(download.value.path())
            if fmt == "png":
                with Image.open(path) as image:
                    image.verify()
            else:
                assert ET.parse(path).getroot().tag.endswith("svg")
    page.goto(f"{server}/tokenizer", wait_until="domcontentloaded")
    settle(page)
    for fmt in ("png", "html"):
        with page.expect_download(timeout=60_000) as download:
            page.locator(f'button[data-gb-key="tok-tokens"][data-gb-export="{fmt}"]').click()
        path = Path(download.value.path())
        if fmt == "png":
            with Image.open(path) as image:
                assert image.format == "PNG" and image.size[1] > 40
        else:
            assert "<span" in path.read_text() and "http" not in path.read_text()  # self-contained
    assert not blocked, blocked
    page.context.close()
