"""Train the English→French encoder–decoder from scratch: `python -m tools.train_translator --threads 2`.

The data is made here, by core.en_fr's grammar and lexicon: a fixed pool of training sentences (none holding a
held-out combination), grouped by (English length, French length) so that a batch needs no padding. The model is
PRESETS["translator-en-fr"] (core.seq2seq.EncoderDecoder), trained by core.training's one loop and loss: cross-entropy
on the next French word (teacher forcing). It writes assets/models/translator-en-fr: config.json, model.safetensors (fp32), vocab.json,
fp16 snapshots in checkpoints/, translator_log.json, metrics.json and the model card README.md, whose scores are
measured on held-out sentences at the end (`--card-only` re-measures a trained model and rewrites the card).
Seeded: the same command on the same torch build and thread count gives the same model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from core import en_fr
from core.config import PRESETS
from core.loading.integrity import ASSETS, write_sums
from core.loading.registry import MODELS_DIR
from core.loading.weights import load_dir, save_dir, save_weights
from core.seq2seq import EncoderDecoder, greedy, source_ids
from core.tokenizer import BOS, EOS, WordTokenizer
from core.training import Recipe, Trainer, loss_on

NAME = "translator-en-fr"


RECIPE = Recipe(
    steps=3000, batch_size=96, lr=1e-3, min_lr=5e-5, warmup=200, weight_decay=0.01, grad_clip=1.0, seed=1234,
    betas=(0.9, 0.98), eps=1e-9, no_decay=("embed.weight",),  # the embedding is also the output layer: no decay
    pool=150_000,  # training sentences drawn once (with repeats)
    eval_every=250,  # and every 25 steps before that: it learns most in the first few hundred
    snapshot_steps=(0, 50, 100, 200),  # fp16 copies; the final step is the model itself
)


def logged_recipe(d: dict) -> Recipe:
    """The recipe in a translator_log.json. A log written before the one Recipe named its snapshot steps "snapshots"
    and left the optimiser's betas and eps and the undecayed embedding implicit: those come from RECIPE."""
    if isinstance(d.get("snapshots"), list):
        d = {**RECIPE.to_dict(), **{k: v for k, v in d.items() if k != "snapshots"}, "snapshot_steps": d["snapshots"]}
    return Recipe.from_dict(d)


def tokenizer() -> WordTokenizer:
    return WordTokenizer(NAME, en_fr.vocabulary(), en_fr.english_words())


def encode_pair(tok: WordTokenizer, s: en_fr.Sentence) -> tuple[list[int], list[int]]:
    """(encoder input: English + </s>, decoder sequence: <s> + French + </s>)."""
    eos = tok.id_of(EOS)
    return [tok.id_of(w) for w in s.english] + [eos], [tok.id_of(BOS), *(tok.id_of(w) for w in s.french), eos]


def training_pool(tok: WordTokenizer, recipe: Recipe) -> tuple[dict, set[str]]:
    """(length pair → (source ids, target ids) tensors, the English sentences in the pool)."""
    rng, groups, seen = random.Random(recipe.seed), defaultdict(list), set()
    for _ in range(recipe.pool):
        s = en_fr.training_sentence(rng)
        src, tgt = encode_pair(tok, s)
        groups[(len(src), len(tgt))].append((src, tgt))
        seen.add(" ".join(s.english))
    return {k: (torch.tensor([p[0] for p in v]), torch.tensor([p[1] for p in v])) for k, v in groups.items()}, seen


def batches(groups: dict, batch_size: int, seed: int):
    """Endless batches: a length group chosen in proportion to its size, then random rows of it."""
    gen = torch.Generator().manual_seed(seed)
    keys = list(groups)
    weights = torch.tensor([float(len(groups[k][0])) for k in keys])
    while True:
        src, tgt = groups[keys[int(torch.multinomial(weights, 1, generator=gen))]]
        rows = torch.randint(len(src), (batch_size,), generator=gen)
        yield src[rows], tgt[rows]


def test_sets(seen: set[str]) -> dict[str, list[en_fr.Sentence]]:
    """Held-out combinations (never in any training sentence), of the required form and of every form; and sentences
    without them that the training pool happens not to hold (unseen rows)."""
    rng, rows = random.Random(99), {}
    while len(rows) < 500:
        s = en_fr.sample(rng, basic=True)
        key = " ".join(s.english)
        if not s.held_out and key not in seen:
            rows[key] = s
    return {"held-out combinations, DET [ADJ] NOUN VERB DET [ADJ] NOUN": en_fr.held_out_sentences(1000, 7, True),
            "held-out combinations, every form": en_fr.held_out_sentences(1000, 8, False),
            "unseen rows (no held-out combination), DET [ADJ] NOUN VERB DET [ADJ] NOUN": list(rows.values())}


def score(model: EncoderDecoder, sentences: list[en_fr.Sentence]) -> dict:
    """Exact match and corpus BLEU of greedy translations against the grammar's, plus a few misses."""
    tok = model.tokenizer
    hyps, refs, misses = [], [], []
    for s in sentences:
        written, _ = greedy(model, source_ids(model, " ".join(s.english)))
        words = [tok.display(i) for i in written if i != tok.id_of(EOS)]
        hyps.append(words)
        refs.append(s.french)
        if words != s.french and len(misses) < 5:
            misses.append({"english": " ".join(s.english), "expected": " ".join(s.french), "got": " ".join(words)})
    exact = sum(h == r for h, r in zip(hyps, refs)) / len(refs)
    return {"sentences": len(refs), "exact_match": round(exact, 4), "bleu": round(en_fr.bleu(hyps, refs), 2),
            "misses": misses}


def validate(model: EncoderDecoder, val: list[tuple[list[int], list[int]]], quick_test: list[en_fr.Sentence]
             ) -> tuple[float, float]:
    """(mean loss on the held-out pairs, exact match of 50 greedy translations), the model left training."""
    model.eval()
    with torch.no_grad():
        val_loss = sum(float(loss_on(model, torch.tensor([s]), torch.tensor([t]))) for s, t in val) / len(val)
    exact = score(model, quick_test[:50])["exact_match"]
    model.train()
    return val_loss, exact


def train(out: Path, recipe: Recipe, threads: int, command: str) -> None:
    torch.manual_seed(recipe.seed)
    tok = tokenizer()
    cfg = PRESETS[NAME]
    assert cfg.vocab_size == tok.n_vocab, (cfg.vocab_size, tok.n_vocab)
    model = EncoderDecoder(cfg)
    model.tokenizer = tok
    groups, seen = training_pool(tok, recipe)
    quick_test = en_fr.held_out_sentences(100, 5, True)
    val = [encode_pair(tok, s) for s in quick_test]
    stream = batches(groups, recipe.batch_size, recipe.seed)
    trainer = Trainer(model, recipe, lambda step: next(stream))
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    log, t0 = [], time.perf_counter()

    def checkpoint(step: int) -> None:
        if step in recipe.snapshot_steps:
            save_weights(model, out / "checkpoints" / f"step_{step:06d}.safetensors", half=True)
        if step % recipe.eval_every == 0 or (step < recipe.eval_every and step % 25 == 0) or step == recipe.steps:
            val_loss, exact = validate(model, val, quick_test)
            log.append({"step": step, "val_loss": float(f"{val_loss:.4g}"), "exact_match": exact,
                        "elapsed_s": round(time.perf_counter() - t0, 1)})
            print(f"step {step}: held-out loss {val_loss:.4f}, exact match {exact:.2f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)

    def progress(step: int, loss: float) -> None:
        if (step - 1) % 25 == 0:  # logged under the step's index, counted from 0
            log.append({"step": step - 1, "train_loss": float(f"{loss:.4g}")})

    trainer.run(progress=progress, checkpoint=checkpoint)
    wall = time.perf_counter() - t0
    save_dir(model.eval(), out, tokenizer_spec={"kind": "words", "file": "vocab.json"})
    (out / "vocab.json").write_text(json.dumps({"tokens": tok.tokens, "source_words": en_fr.english_words()},
                                               ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    meta = {"command": command, "recipe": recipe.to_dict(), "config": cfg.to_dict(), "threads": threads,
            "torch": torch.__version__, "wall_time_s": round(wall, 1), "training_sentences": recipe.pool,
            "distinct_training_sentences": len(seen), "snapshot_steps": list(recipe.snapshot_steps), "log": log}
    (out / "translator_log.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"trained in {wall / 60:.1f} min", flush=True)


def card(out: Path) -> None:
    """Measure the shipped model on the test sets and write metrics.json and the model card."""
    model = load_dir(out, "cpu")
    meta = json.loads((out / "translator_log.json").read_text())
    recipe = logged_recipe(meta["recipe"])
    _, seen = training_pool(model.tokenizer, recipe)
    metrics = {name: score(model, sentences) for name, sentences in test_sets(seen).items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(model_card(model, meta, metrics), encoding="utf-8")
    print(json.dumps({k: {m: v[m] for m in ("exact_match", "bleu")} for k, v in metrics.items()}, indent=1))


def model_card(model: EncoderDecoder, meta: dict, metrics: dict) -> str:
    cfg, r = model.config, meta["recipe"]
    rows = "\n".join(f"| {name} | {m['sentences']} | {100 * m['exact_match']:.1f}% | {m['bleu']:.1f} |"
                     for name, m in metrics.items())
    misses = [x for m in metrics.values() for x in m["misses"]][:6]
    miss_rows = "\n".join(f"| {x['english']} | {x['expected']} | {x['got']} |" for x in misses) or "| (none) | | |"
    return f"""# {NAME}: an English→French encoder–decoder trained from scratch

The architecture of "Attention Is All You Need" (Vaswani et al., 2017) at toy size, trained by this project so that
Glassbox can show all three attentions of the original Transformer — the encoder's self-attention, the decoder's
masked self-attention and the cross-attention between them — on a model that really translates.

## Data
Generated by `core/en_fr.py`: a grammar (NP VERB NP, with "does not"/"doesn't" negation; NP = DET [SIZE] [COLOUR]
NOUN) and a bilingual lexicon of {len(model.tokenizer.source_words)} English words. French is computed by rule:
gender agreement (le/la, un/une, noir/noire), size adjectives before the noun and colour adjectives after it,
"ne … pas" around the verb, elision (l', n'). {meta['training_sentences']:,} training sentences were drawn
({meta['distinct_training_sentences']:,} distinct). Held out of every training sentence: the adjective–noun pairs
{', '.join(' '.join(p) for p in sorted(en_fr.HELD_OUT_PAIRS))} and the subject–object pairs
{', '.join(' → '.join(p) for p in sorted(en_fr.HELD_OUT_ROLES))}. The model knows nothing else: any other word is
refused, and a sentence outside the grammar gets no guarantee.

## Architecture
Encoder–decoder, post-norm (Add & Norm after each sublayer), ReLU feed-forward, sinusoidal positions, one embedding
matrix shared by source words, target words and the output layer (scaled by √d_model on the way in).
{cfg.n_layers} encoder blocks, {cfg.n_decoder_layers} decoder blocks, {cfg.n_heads} heads, d_model {cfg.d_model},
feed-forward {cfg.mlp_dim}, a word vocabulary of {cfg.vocab_size} (English and French; "table" is one token),
at most {cfg.n_ctx} tokens. **{model.num_params():,} parameters.**

## Training
{r['steps']:,} steps of AdamW (β = 0.9, 0.98; weight decay {r['weight_decay']} on matrices), batches of
{r['batch_size']} sentence pairs of equal lengths (no padding), learning rate {r['lr']} with {r['warmup']} warmup
steps and cosine decay to {r['min_lr']}, gradient clipping {r['grad_clip']}, dropout {cfg.dropout}, no label
smoothing (the probabilities shown are the model's own), seed {r['seed']}, fp32.
**Wall time: {meta['wall_time_s'] / 60:.1f} minutes** on {meta['threads']} CPU threads (torch {meta['torch']}).
Snapshots (fp16) at steps {', '.join(map(str, meta['snapshot_steps']))}.

Reproduce: `{meta['command']}`

## Results (greedy decoding; exact match = every word right; corpus BLEU-4 on words)
| test set | sentences | exact match | BLEU |
|---|---|---|---|
{rows}

Some misses:

| English | expected | got |
|---|---|---|
{miss_rows}

## Limits
A toy: a closed vocabulary, one sentence pattern, no punctuation, no capitals in its output, no plurals, no other
tenses. It shows how an encoder–decoder works; it is not a translator for real text.
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=MODELS_DIR / NAME)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--card-only", action="store_true", help="re-measure the trained model and rewrite its card")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python -m tools.train_translator " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if not args.card_only:
        recipe = RECIPE if args.steps is None else dataclasses.replace(RECIPE, steps=args.steps)
        train(args.out, recipe, args.threads, command)
    card(args.out)
    if args.out.resolve().is_relative_to(ASSETS.resolve()):
        write_sums()


if __name__ == "__main__":
    main()
