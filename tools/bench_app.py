"""App latency and memory figures (not a pytest test): python -m tools.bench_app

Each measurement runs in a fresh Python process (so imports and model loading count):
- cold start: the home page's first AppTest run, model load included;
- warm reruns: per page, the median of 5 AppTest reruns after one warm-up run;
- peak RSS of that process after visiting every page, with the embedded model, and with GPT-2 small (random
  weights with GPT-2 small's shape, placed in the Hub cache so the app's real "gpt2" loading path is used).
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pages.common.nav import PAGES as SPECS  # noqa: E402

PAGES = [p.path for p in SPECS]

CHILD = r"""
import json, resource, statistics, sys, time
from streamlit.testing.v1 import AppTest
model = sys.argv[1]
pages = json.loads(sys.argv[2])
t0 = time.perf_counter()
at = AppTest.from_file(sys.argv[3], default_timeout=300)
if model != "tiny-stories-1m":
    at.query_params["model"] = model
at.run()
cold = time.perf_counter() - t0
assert not at.exception, [e.value for e in at.exception]
warm = {}
for page in pages:
    at.switch_page(page).run()
    times = []
    for _ in range(5):
        t = time.perf_counter(); at.run(); times.append(time.perf_counter() - t)
    assert not at.exception, (page, [e.value for e in at.exception])
    warm[page] = round(statistics.median(times) * 1000, 1)
print(json.dumps({"cold_start_s": round(cold, 2), "warm_rerun_ms": warm,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def run(model: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, model, json.dumps(PAGES), str(ROOT / "app.py")], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {"embedded": run("tiny-stories-1m", dict(os.environ))}
    print("embedded model:", json.dumps(results["embedded"], indent=1))
    import torch
    import transformers

    with tempfile.TemporaryDirectory() as cache:
        torch.manual_seed(0)
        hf = transformers.GPT2LMHeadModel(transformers.GPT2Config())
        repo = Path(cache) / "models--openai-community--gpt2"  # the standard Hugging Face cache layout
        hf.save_pretrained(repo / "snapshots" / ("0" * 40))
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0" * 40)
        del hf
        results["gpt2"] = run("gpt2", {**os.environ, "HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1"})
    print("GPT-2 small:", json.dumps(results["gpt2"], indent=1))
    warm = list(results["embedded"]["warm_rerun_ms"].values())
    print(f"median warm rerun over pages (embedded): {sorted(warm)[len(warm) // 2]} ms")


if __name__ == "__main__":
    main()
