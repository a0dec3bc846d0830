"""Pretraining from the command line: `python -m tools.train --preset tiny-stories-1m` reproduces the embedded
default model in assets/models/ (the corpus is read from ../shared/corpus, never committed).

A byte-level BPE (core.bpe) is learned on the training split; the loop is core.training's one loop (`Trainer.run`)
with the preset's Recipe, on the corpus's batches (`CorpusBatches`). It writes fp16 snapshots spread from step 0 to the end (the app shows how the model learned), a typed
training log, and a resume file holding model, optimizer and RNG states so an interrupted run continues exactly
where it stopped (`--resume`). At the end it measures the model and rewrites its card (tools.model_card).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from core.bpe import train_bpe
from core.config import PRESETS, ModelConfig
from core.loading.integrity import ASSETS, write_sums
from core.loading.registry import MODELS_DIR
from core.loading.weights import save_dir, save_weights
from core.tokenizer import ENDOFTEXT, write_ranks
from core.training import (
    CORPUS,
    RECIPES,
    CorpusBatches,
    Recipe,
    Trainer,
    TrainingLog,
    encode_stories,
    evaluate,
    initial_model,
    read_stories,
    snapshot_schedule,
    split_stories,
)


def corpus_tokens(corpus: Path, recipe: Recipe, cfg: ModelConfig, out: Path) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Learn the BPE on the training split and write it to `out`; returns (its tokenizer spec, the training tokens,
    the validation tokens)."""
    files = [corpus / f for f in recipe.files]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"corpus files not found: {missing}")
    train_stories, val_stories = split_stories(read_stories(files), recipe.val_every)
    t0 = time.time()
    bpe = train_bpe("\n\n".join(train_stories), cfg.vocab_size - 257)
    tokenizer = bpe.tokenizer(cfg.name, {ENDOFTEXT: cfg.vocab_size - 1})
    assert tokenizer.n_vocab == cfg.vocab_size, (tokenizer.n_vocab, cfg.vocab_size)
    write_ranks(bpe.ranks, out / "tokenizer.tiktoken")
    rank_sha = hashlib.sha256((out / "tokenizer.tiktoken").read_bytes()).hexdigest()
    spec = {"file": "tokenizer.tiktoken", "pattern": "r50k", "special_tokens": {ENDOFTEXT: cfg.vocab_size - 1},
            "sha256": rank_sha}
    train_tokens = encode_stories(tokenizer, train_stories)
    val_tokens = encode_stories(tokenizer, val_stories)
    print(f"stories: {len(train_stories)} train / {len(val_stories)} val; tokens: {len(train_tokens):,} train / "
          f"{len(val_tokens):,} val; BPE {len(bpe.merges)} merges in {time.time() - t0:.1f}s; "
          f"threads {torch.get_num_threads()}", flush=True)
    return spec, train_tokens, val_tokens


def train(trainer: Trainer, val_tokens: torch.Tensor, out: Path, resume: bool) -> float:
    """Run the loop to the recipe's end: fp16 snapshots, a validation line every eval_every steps (and a resume file
    then), a training-loss line every step. With `resume`, continue from <out>/train_state.pt. Returns the wall time
    in seconds (a resumed run's included)."""
    recipe: Recipe = trainer.recipe
    n_ctx = trainer.model.config.n_ctx
    state_path = out / "train_state.pt"
    elapsed_before = 0.0
    if resume and state_path.exists():
        trainer.load_state(torch.load(state_path, weights_only=True))
        elapsed_before = trainer.log[-1]["elapsed_s"] if trainer.log else 0.0
        print(f"resumed at step {trainer.step_no}", flush=True)
    snaps = snapshot_schedule(recipe.steps, recipe.snapshots)
    start_time = time.time() - elapsed_before
    bar = tqdm(total=recipe.steps, initial=trainer.step_no, unit="step", dynamic_ncols=True, mininterval=5)

    def checkpoint(s: int) -> None:
        if s in snaps and s < recipe.steps:
            save_weights(trainer.model, out / "checkpoints" / f"step_{s:06d}.safetensors", half=True)
        if s % recipe.eval_every == 0 or s == recipe.steps:
            val = evaluate(trainer.model, val_tokens, n_ctx, recipe.batch_size, recipe.eval_batches)
            entry = {"step": s, "val_loss": round(val, 4), "tokens": trainer.tokens_seen,
                     "elapsed_s": round(time.time() - start_time, 1)}
            trainer.log.append(entry)
            bar.write(json.dumps(entry))
            torch.save(trainer.state(), state_path)

    def progress(s: int, loss: float) -> None:
        trainer.log.append({"step": s, "train_loss": round(loss, 4)})
        elapsed = time.time() - start_time
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{trainer.tokens_seen / max(elapsed, 1e-9):,.0f}")
        bar.update(1)

    trainer.run(progress=progress, checkpoint=checkpoint)
    bar.close()
    return time.time() - start_time


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny-stories-1m", choices=sorted(RECIPES))
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="folder with the TinyStories excerpts")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default assets/models/<preset>)")
    ap.add_argument("--steps", type=int, default=None, help="override the recipe's step count")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16 autocast on CPU (slower here)")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/train_state.pt")
    args = ap.parse_args(argv)
    command = "python -m tools.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = RECIPES[args.preset]
    if args.steps:
        recipe = dataclasses.replace(recipe, steps=args.steps)
    cfg: ModelConfig = PRESETS[args.preset]
    out = args.out or MODELS_DIR / args.preset
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)

    spec, train_tokens, val_tokens = corpus_tokens(args.corpus, recipe, cfg, out)

    trainer = Trainer(initial_model(cfg, recipe), recipe, CorpusBatches(train_tokens, cfg.n_ctx, recipe))
    trainer.dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    wall = train(trainer, val_tokens, out, args.resume)

    trainer.model.eval()
    save_dir(trainer.model, out, spec)
    log = TrainingLog.from_dict({
        "preset": args.preset, "command": command, "recipe": recipe.to_dict(), "config": cfg.to_dict(),
        "train_tokens": len(train_tokens), "val_tokens": len(val_tokens), "tokens_seen": trainer.tokens_seen,
        "wall_time_s": round(wall, 1), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "snapshot_steps": snapshot_schedule(recipe.steps, recipe.snapshots), "log": trainer.log,
    })
    (out / "training_log.json").write_text(json.dumps(log.to_dict(), indent=1) + "\n")
    (out / "train_state.pt").unlink(missing_ok=True)
    if out.resolve().is_relative_to(ASSETS.resolve()):
        write_sums()  # the shipped files changed on purpose: record their new sums
    print(f"done: {recipe.steps} steps, {trainer.tokens_seen:,} tokens in {wall / 60:.1f} min → {out}", flush=True)
    if out.resolve() == (MODELS_DIR / args.preset).resolve():
        from tools import model_card  # measures the shipped model and writes its card

        model_card.main(["--name", args.preset, "--corpus", str(args.corpus)])


if __name__ == "__main__":
    main()
