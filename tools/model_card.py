"""Evaluate a trained model and write its model card: `python -m tools.model_card [--name tiny-stories-1m]`.

Measures, on the model as shipped: validation loss and perplexity on the held-out stories, the next-token probes
the project promises, a greedy continuation, and the most previous-token-like head. Run by tools.train at the end
of training; the card's numbers are exactly what this prints.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from core.generate import generate
from core.interpret.heads import best_head, previous_token_scores
from core.loading.integrity import write_sums
from core.loading.registry import MODELS_DIR, load_model
from core.model import Transformer
from core.trace import layer_patterns, trace
from core.training import CORPUS, RECIPES, TrainingLog, encode_stories, evaluate, read_stories, split_stories

PROBES = [  # prompt, acceptable next tokens, how many top ranks they may be in, minimum probability (or None)
    ("Once upon a time, there was a little", [" girl", " boy"], 2, 0.3),
    ("Lily and Tom went to the", [" park"], 5, None),
]


def probe(model: Transformer, prompt: str, wanted: list[str], top: int) -> dict:
    probs = trace(model, prompt, record=()).probs
    values, ids = probs.topk(top)
    tops = [(model.tokenizer.decode([i]), round(float(p), 4)) for i, p in zip(ids.tolist(), values.tolist())]
    hits = [(t, p) for t, p in tops if t in wanted]
    best = max(hits, key=lambda h: h[1]) if hits else None
    return {"prompt": prompt, "top": tops, "hit": best}


def probes_pass(results: list[dict]) -> bool:
    return all(r["hit"] and (m is None or r["hit"][1] >= m) for r, (_, _, _, m) in zip(results, PROBES))


def measure(model: Transformer, name: str, corpus: Path = CORPUS) -> dict:
    recipe = RECIPES[name]
    _, val_stories = split_stories(read_stories([corpus / f for f in recipe.files]), recipe.val_every)
    val_tokens = encode_stories(model.tokenizer, val_stories)
    val_loss = evaluate(model, val_tokens, model.config.n_ctx, recipe.batch_size, None)
    results = [probe(model, p, w, k) for p, w, k, _ in PROBES]
    greedy = generate(model, "Once upon a time", max_new_tokens=40, temperature=0)
    sample_text = " ".join(val_stories[:3])
    sample = trace(model, model.tokenizer.encode(sample_text)[: model.config.n_ctx],
                   record=("blocks.*.attn.hook_pattern",), logits="none")
    layer, head, score = best_head(previous_token_scores(layer_patterns(model, sample)))
    return {
        "val_loss": round(val_loss, 4), "val_perplexity": round(math.exp(val_loss), 2),
        "val_tokens": len(val_tokens), "val_stories": len(val_stories), "probes": results,
        "probes_pass": probes_pass(results), "greedy": "Once upon a time" + greedy.text,
        "previous_token_head": {"layer": layer, "head": head, "score": round(score, 3)},
    }


def write_card(folder: Path, metrics: dict) -> None:
    log = TrainingLog.from_dict(json.loads((folder / "training_log.json").read_text()))
    cfg, recipe = log.config, log.recipe
    model = load_model(folder.name if folder.parent == MODELS_DIR else folder, device="cpu")
    n_params = model.num_params()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "train_state.pt")
    size = sum(p.stat().st_size for p in files)
    probes = "\n".join(
        f"| {r['prompt']!r} | {', '.join(f'{t!r} {p:.3f}' for t, p in r['top'])} | "
        f"{'PASS' if r['hit'] else 'FAIL'} |" for r in metrics["probes"]
    )
    prev_note = (
        "" if metrics["previous_token_head"]["score"] >= 0.5 else
        " **Below 0.5: no head of this model is mostly previous-token**; its heads spread their attention over "
        "the recent tokens (see the Attention page's head labels)."
    )
    extras = []
    if recipe.short_steps:
        extras.append(f"The first {recipe.short_steps:,} steps train on {recipe.short_ctx}-token windows (as many "
                      f"tokens per step, from random starts), the rest on the full {cfg.n_ctx}.")
    if recipe.pos_init_scale:
        extras.append(f"The learned position table starts as cos/sin waves ({recipe.pos_init_scale:g} × "
                      "[cos ωi, sin ωi], ω evenly spread from π/64 to π: `core.training.init_positions`), not noise.")
    if recipe.pos_lr_mult != 1:
        extras.append(f"The position table learns at {recipe.pos_lr_mult:g}× the learning rate, without weight decay.")
    extra = (" ".join(extras) + "\n") if extras else ""
    text = f"""# {cfg.name}: Glassbox's embedded TinyStories model

A tiny GPT-2-style language model trained from scratch by this project (`tools/train.py`) so that Glassbox works
offline the moment it is installed. It knows only simple children's stories.

## Data
TinyStories (Eldan & Li, 2023), licence **CDLA-Sharing-1.0**: the two excerpts in the project's shared corpus
({', '.join(recipe.files)}). Stories are split on blank lines; every {recipe.val_every}th story is held out
for validation (whole stories, never seen in training): {log.train_tokens:,} training tokens,
{log.val_tokens:,} validation tokens.

## Architecture
GPT-2 family: learned absolute positions, LayerNorm, GELU MLP, biases, tied unembedding.
{cfg.n_layers} layers × {cfg.n_heads} heads, d_model {cfg.d_model}, MLP {cfg.mlp_dim},
context {cfg.n_ctx} tokens, vocabulary {cfg.vocab_size:,} (its own byte-level BPE: 256 bytes +
{cfg.vocab_size - 257:,} merges learned on the training split, GPT-2's pre-tokenizer regex, and
`<|endoftext|>` = {cfg.vocab_size - 1}). **{n_params:,} parameters.**

## Training
{recipe.steps:,} steps of AdamW (β = 0.9, 0.95; weight decay {recipe.weight_decay} on matrices), batch
{recipe.batch_size} × {cfg.n_ctx} tokens, learning rate {recipe.lr} with {recipe.warmup} warmup steps and
cosine decay to {recipe.min_lr}, gradient clipping {recipe.grad_clip}, dropout {cfg.dropout} on the residual
stream (none on attention weights), windows with
stride {recipe.stride}, seed {recipe.seed}, fp32 (bf16 autocast measured slower on this CPU).
{extra}**Tokens seen: {log.tokens_seen:,}. Wall time: {log.wall_time_s / 60:.1f} minutes** on {log.threads} CPU
threads (torch {log.torch}).

Reproduce: `{log.command}`

Snapshots (fp16) at steps {', '.join(map(str, log.snapshot_steps[:-1]))} are in `checkpoints/`; the final model
(step {recipe.steps}) is `model.safetensors` (fp32). Shipped files: {size / 1e6:.1f} MB.

## Results (measured by `python -m tools.model_card`)
- Validation loss **{metrics['val_loss']} nats/token**, perplexity **{metrics['val_perplexity']}**
  ({metrics['val_tokens']:,} tokens of {metrics['val_stories']} held-out stories).
- Next-token probes:

| prompt | top tokens (probability) | |
|---|---|---|
{probes}

- Greedy continuation (40 tokens): "{metrics['greedy']}"
- Most previous-token-like head: layer {metrics['previous_token_head']['layer']}, head
  {metrics['previous_token_head']['head']}, score {metrics['previous_token_head']['score']} (mean attention to the
  previous token over three held-out stories).{prev_note}
"""
    (folder / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--name", default="tiny-stories-1m")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--no-card", action="store_true", help="print the figures only")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = load_model(args.name, device="cpu")
    metrics = measure(model, args.name, args.corpus)
    print(json.dumps(metrics, indent=1, ensure_ascii=False))
    if not args.no_card:
        write_card(MODELS_DIR / args.name, metrics)
        (MODELS_DIR / args.name / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False) + "\n")
        write_sums()  # the card and metrics are shipped files: record their new sums


if __name__ == "__main__":
    main()
