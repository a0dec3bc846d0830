"""Benchmark the core against HF transformers and the FLOP floor: `python -m tools.bench [--quick] [--json F]`.

All timings are medians of interleaved repetitions after a warm-up, in one process, and reported as ratios
against a reference measured in the same run (absolute times drift on shared machines):
1. recorded forward (what a text change records for every page: core.model.DEFAULT_RECORD, the embedding stage
   and the residual stream) vs HF GPT2LMHeadModel (eager, output_attentions and output_hidden_states) with the same
   random GPT-2-small weights, and vs the same forward with nothing recorded (the recording's overhead); and the
   forward recording every attention pattern too (what HF's output_attentions does; the pages compute a layer's
   pattern from the stream when they show it, core.trace.layer_pattern);
2. the same forward against the FLOP floor (2 × (non-embedding params + unembedding rows computed) × T FLOPs
   at a matmul peak measured here);
3. KV-cached greedy generation of 32 tokens from a 16-token prompt vs HF `generate`;
4. bytes held by a full trace of GPT-2 small at T = 1024;
5. every offline model (the embedded GPT, SmolLM2, MiniLM, where installed): the recorded forward's overhead over
   the same forward with nothing recorded, at T = 16 … 1,024 (up to its context), and with every pattern recorded.
Needs `transformers` (a test/dev dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import torch

from core import generate, load_model, trace
from core.loading.registry import DEFAULT_MODEL, MODELS_DIR
from core.model import DEFAULT_RECORD, PATTERN_RECORD


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per function, alternating between them so drift hits all sides alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_peak(n: int = 1024, reps: int = 10) -> float:
    """FLOP/s of a square fp32 matmul: the practical ceiling of this machine for this workload."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = interleaved({"mm": lambda: a @ b}, reps)["mm"]
    return 2 * n**3 / t


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer lengths and repetitions (a smoke run)")
    ap.add_argument("--json", default="bench.json", help="where to write the figures")
    args = ap.parse_args(argv)
    import transformers

    torch.manual_seed(0)
    lengths = [16, 64] if args.quick else [16, 64, 256, 1024]
    reps = 3 if args.quick else 7
    machine = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
               "transformers": transformers.__version__, "python": platform.python_version(),
               "cpu": platform.processor() or platform.machine()}
    print("machine:", machine)
    out: dict = {"machine": machine, "forward": [], "generation": {}, "memory": {}, "models": []}

    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(attn_implementation="eager")).eval()
    with tempfile.TemporaryDirectory() as tmp:
        hf.save_pretrained(tmp)
        ours = load_model(tmp, device="cpu")
    peak = matmul_peak()
    out["matmul_peak_gflops"] = round(peak / 1e9, 1)
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s")
    n_nonembed = ours.num_params(non_embedding=True)
    vocab = ours.config.vocab_size

    print(f"{'T':>5} {'ours last':>10} {'ours all':>10} {'HF':>10} {'last/HF':>8} {'all/HF':>8} {'% peak':>7} "
          f"{'recording':>10} {'+patterns':>10}")
    for T in lengths:
        ids = torch.randint(0, vocab, (T,)).tolist()
        x = torch.tensor([ids])

        def hf_fwd(x=x):
            with torch.inference_mode():
                hf(x, output_attentions=True, output_hidden_states=True)

        t = interleaved({
            "ours_last": lambda ids=ids: trace(ours, ids, record=DEFAULT_RECORD),
            "ours_all": lambda ids=ids: trace(ours, ids, record=DEFAULT_RECORD, logits="all"),
            "ours_plain": lambda ids=ids: trace(ours, ids, record=()),  # the same forward, nothing recorded
            "ours_patterns": lambda ids=ids: trace(ours, ids, record=(*DEFAULT_RECORD, PATTERN_RECORD)),
            "hf": hf_fwd,
        }, reps)
        flops = 2 * (n_nonembed + ours.config.d_model * vocab / T) * T  # last-position unembedding: one row set
        row = {"T": T, **{k: round(v * 1e3, 2) for k, v in t.items()},
               "ratio_last": round(t["ours_last"] / t["hf"], 3), "ratio_all": round(t["ours_all"] / t["hf"], 3),
               "recording_overhead": round(t["ours_last"] / t["ours_plain"] - 1, 3),
               "patterns_overhead": round(t["ours_patterns"] / t["ours_plain"] - 1, 3),
               "peak_fraction": round(flops / t["ours_last"] / peak, 3)}
        out["forward"].append(row)
        print(f"{T:>5} {row['ours_last']:>8.1f}ms {row['ours_all']:>8.1f}ms {row['hf']:>8.1f}ms "
              f"{row['ratio_last']:>8.3f} {row['ratio_all']:>8.3f} {row['peak_fraction']:>7.1%} "
              f"{row['recording_overhead']:>+10.1%} {row['patterns_overhead']:>+10.1%}")

    prompt = torch.randint(0, vocab, (16,)).tolist()

    def hf_gen():
        with torch.inference_mode():
            hf.generate(torch.tensor([prompt]), max_new_tokens=32, min_new_tokens=32, do_sample=False,
                        pad_token_id=0)

    g = interleaved({"ours": lambda: generate(ours, prompt, max_new_tokens=32, temperature=0, stop_at_eot=False),
                     "hf": hf_gen}, max(3, reps // 2))
    out["generation"] = {"ours_tok_s": round(32 / g["ours"], 1), "hf_tok_s": round(32 / g["hf"], 1),
                         "speedup": round(g["hf"] / g["ours"], 3)}
    print("generation 32 tokens:", out["generation"])

    full = trace(ours, torch.randint(0, vocab, (1024,)).tolist(), record=DEFAULT_RECORD, lens_top_k=1)
    out["memory"]["gpt2_trace_T1024_MB"] = round(full.nbytes / 1e6, 1)
    print(f"GPT-2 small trace at T=1024 holds {out['memory']['gpt2_trace_T1024_MB']} MB")

    out["models"] = []
    print(f"{'model':<16}{'T':>6}{'plain':>10}{'recorded':>10}{'recording':>10}{'+patterns':>10}")
    for name in (DEFAULT_MODEL, "smollm2-135m", "minilm-l6"):
        if name == DEFAULT_MODEL and not (MODELS_DIR / DEFAULT_MODEL / "config.json").exists():
            continue
        try:
            model = load_model(name, device="cpu")
        except (ValueError, OSError, ImportError) as err:  # a packaged model that is not installed
            print(f"{name}: not measured ({err})")
            continue
        n_ctx = model.config.n_ctx
        for T in sorted({min(n, n_ctx) for n in ([16, 64] if args.quick else [16, 64, 256, 1024])}):
            ids = torch.randint(0, model.config.vocab_size - 1, (T,), generator=torch.Generator().manual_seed(T)).tolist()
            t = interleaved({"recorded": lambda ids=ids, model=model: trace(model, ids),
                             "plain": lambda ids=ids, model=model: trace(model, ids, record=()),
                             "patterns": lambda ids=ids, model=model: trace(model, ids,
                                                                              record=(*DEFAULT_RECORD, PATTERN_RECORD))},
                            reps)
            row = {"model": name, "T": T, **{f"{k}_ms": round(v * 1e3, 2) for k, v in t.items()},
                   "recording_overhead": round(t["recorded"] / t["plain"] - 1, 3),
                   "patterns_overhead": round(t["patterns"] / t["plain"] - 1, 3)}
            out["models"].append(row)
            print(f"{name:<16}{T:>6}{row['plain_ms']:>8.1f}ms{row['recorded_ms']:>8.1f}ms"
                  f"{row['recording_overhead']:>+10.1%}{row['patterns_overhead']:>+10.1%}", flush=True)

    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", args.json)
    return out


if __name__ == "__main__":
    main()
