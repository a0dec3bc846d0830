"""Load times, memory and a recorded forward for the pip-packaged models (not a pytest test):
python -m tools.bench_packaged [--json F]

Each figure comes from a fresh Python process, so imports count and RSS is the process's own:
- first load: an empty cache folder (SmolLM2: GGUF read, dequantized, converted and cached as safetensors);
- cached load: the same cache folder again (SmolLM2 reads the cached safetensors);
- RSS: peak resident memory of that process after the cached load and the forward passes;
- recorded forward at T = 64: everything the pages record (DEFAULT_RECORD, attention patterns included),
  median of 5 after one warm-up, against the same model's unrecorded fast path in the same process.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, statistics, sys, time
t0 = time.perf_counter()
import torch
from core import load_model, trace
model = load_model(sys.argv[1], device="cpu")
load_s = time.perf_counter() - t0
ids = torch.randint(0, model.config.vocab_size, (64,), generator=torch.Generator().manual_seed(0)).tolist()
def median(fn):
    fn()
    times = []
    for _ in range(5):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)
recorded = median(lambda: trace(model, ids))
x = torch.tensor([ids])
with torch.inference_mode():
    plain = median(lambda: model(x, logits="last" if model.config.lm_head else "none"))
print(json.dumps({"load_s": round(load_s, 2), "recorded_ms": round(recorded * 1000, 1),
                  "unrecorded_ms": round(plain * 1000, 1),
                  "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def child(model: str, cache: str) -> dict:
    env = {**os.environ, "GLASSBOX_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", CHILD, model], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="bench_packaged.json")
    args = ap.parse_args()
    import torch

    from core.loading import registry
    from core.loading.packaged import INSTALL_HINT

    print(f"cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    results = {}
    packaged = [e.name for e in registry.entries(available_only=False) if e.source == "packaged"]
    for name in [n for n in packaged if registry.get(n).available]:
        with tempfile.TemporaryDirectory() as cache:
            first, cached = child(name, cache), child(name, cache)
        results[name] = {"first_load_s": first["load_s"], "cached_load_s": cached["load_s"],
                         "rss_mb": cached["rss_mb"], "recorded_forward_T64_ms": cached["recorded_ms"],
                         "unrecorded_forward_T64_ms": cached["unrecorded_ms"]}
    missing = sorted(set(packaged) - set(results))
    print(f"{'model':<14}{'first load':>12}{'cached load':>13}{'RSS MB':>9}{'recorded T=64':>15}{'fast path':>11}")
    for name, r in results.items():
        print(f"{name:<14}{r['first_load_s']:>11.2f}s{r['cached_load_s']:>12.2f}s{r['rss_mb']:>9.0f}"
              f"{r['recorded_forward_T64_ms']:>13.1f}ms{r['unrecorded_forward_T64_ms']:>9.1f}ms")
    if missing:
        print("not installed:", ", ".join(missing), f"({INSTALL_HINT})")
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    print("wrote", args.json)


if __name__ == "__main__":
    main()
