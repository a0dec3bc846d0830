"""Pretraining loop: `python -m core.train --preset tiny-stories-1m` reproduces the embedded default model.

Data: the TinyStories excerpts in ../shared/corpus (never committed). Stories are split on blank lines; every
`--val-every`-th story is held out for validation, so no story is in both splits. A byte-level BPE (core.bpe) is
learned on the training split; stories are joined with the end-of-text token; input/target pairs come from a
sliding window of the context length with a configurable stride (targets are inputs shifted by one token).

Optimisation: AdamW (weight decay on matrices only), linear warmup then cosine decay, gradient clipping, periodic
validation loss, fp16 snapshots spread from step 0 to the end (the app shows how the model learned), and a resume
file holding model, optimizer and RNG states so an interrupted run continues exactly where it stopped.

Recipe options that exist for the shipped model's attention (each measured, see init_positions): a short-window
curriculum (`short_ctx` tokens for the first `short_steps` steps), a learned position table that starts as waves
(`pos_init_scale`) and learns `pos_lr_mult` times faster without weight decay.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.bpe import train_bpe
from core.config import PRESETS, ModelConfig
from core.model import Transformer
from core.tokenizer import ENDOFTEXT, write_ranks
from core.weights import MODELS_DIR, save_dir, save_weights

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"

# Training recipes: the model preset plus the loop's settings. The shipped model is "tiny-stories-1m".
RECIPES = {
    "tiny-stories-1m": dict(
        files=["tinystories_a.txt", "tinystories_b.txt"], steps=2400, batch_size=16, lr=6e-3, min_lr=3e-4,
        warmup=100, weight_decay=0.1, grad_clip=1.0, stride=128, eval_every=100, eval_batches=8, snapshots=8,
        val_every=20, seed=1337, short_ctx=64, short_steps=800, pos_lr_mult=10.0, pos_init_scale=0.06,
    ),
}


def read_stories(files: list[Path]) -> list[str]:
    stories = []
    for path in files:
        chunks = [s.strip() for s in path.read_text(encoding="utf-8").split("\n\n")]
        if path.name == "tinystories_b.txt":
            chunks = chunks[1:]  # this excerpt starts mid-story (see the corpus README)
        stories.extend(s for s in chunks if s)
    return stories


def split_stories(stories: list[str], val_every: int) -> tuple[list[str], list[str]]:
    """Hold out whole stories: every val_every-th one goes to validation."""
    val = [s for i, s in enumerate(stories) if i % val_every == val_every - 1]
    train = [s for i, s in enumerate(stories) if i % val_every != val_every - 1]
    return train, val


def encode_stories(tokenizer, stories: list[str]) -> torch.Tensor:
    eot = tokenizer.eot_id
    ids: list[int] = []
    for story in stories:
        ids.extend(tokenizer.encode(story))
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def windows(tokens: torch.Tensor, n_ctx: int, stride: int) -> torch.Tensor:
    """Start offsets of (input, target) windows: x = tokens[s:s+n_ctx], y = tokens[s+1:s+n_ctx+1]."""
    return torch.arange(0, len(tokens) - n_ctx - 1, stride)


def batch(tokens: torch.Tensor, starts: torch.Tensor, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = starts[:, None] + torch.arange(n_ctx + 1)  # (B, n_ctx + 1)
    chunk = tokens[offsets]
    return chunk[:, :-1], chunk[:, 1:]  # (B, T), (B, T)


def lr_at(step: int, lr: float, min_lr: float, warmup: int, steps: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def init_positions(model: Transformer, scale: float) -> None:
    """Start a learned position table as cos/sin waves instead of noise (it is still trained like any weight).

    Row i is scale · [cos(ω_k i), sin(ω_k i)] for d/2 frequencies ω_k spread evenly from π/64 to π (periods 128 down
    to 2 tokens). Moving one position back is then the same rotation everywhere, so a head can learn "attend to the
    previous token" once for all positions; from random rows it has to be learned for each position pair, and at this
    size it never was (best 0.18-0.29 over ~20 recipes). Evenly spread, not GPT-2's geometric, frequencies: most of
    them are fast enough to tell i - 1 from i - 2."""
    table = model.pos_embed.weight
    half = table.shape[1] // 2
    angles = torch.arange(table.shape[0])[:, None] * torch.linspace(math.pi / 64, math.pi, half)[None]  # (n_ctx, d/2)
    with torch.no_grad():
        table.copy_(torch.cat([angles.cos(), angles.sin()], dim=1) * scale)


def make_optimizer(model: Transformer, lr: float, weight_decay: float, pos_lr_mult: float = 1.0) -> torch.optim.AdamW:
    """Weight decay on matrices only. With pos_lr_mult ≠ 1 a learned position table gets its own group: that many
    times the learning rate and no weight decay (each row only learns from its own position, so it moves slowly)."""
    pos = model.pos_embed.weight if pos_lr_mult != 1 and model.config.positional == "learned" else None
    rest = [p for p in model.parameters() if p is not pos]
    groups = [{"params": [p for p in rest if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in rest if p.dim() < 2], "weight_decay": 0.0}]
    if pos is not None:
        groups.append({"params": [pos], "weight_decay": 0.0, "lr_mult": pos_lr_mult})
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def loss_on(model: Transformer, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        logits, _ = model(x, logits="all")  # (B, T, V)
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))


@torch.no_grad()
def evaluate(model: Transformer, tokens: torch.Tensor, n_ctx: int, batch_size: int, max_batches: int | None) -> float:
    """Mean next-token loss over non-overlapping validation windows (all of them when max_batches is None)."""
    was_training = model.training
    model.eval()
    starts = windows(tokens, n_ctx, n_ctx)
    chunks = starts.split(batch_size)
    if max_batches is not None:
        chunks = chunks[:max_batches]
    total, count = 0.0, 0
    for s in chunks:
        x, y = batch(tokens, s, n_ctx)
        total += loss_on(model, x, y, torch.float32).item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return total / count


class Trainer:
    """Holds everything a resumable run needs; `step()` does one optimisation step."""

    def __init__(self, cfg: ModelConfig, train_tokens: torch.Tensor, val_tokens: torch.Tensor, recipe: dict):
        self.cfg, self.recipe = cfg, recipe
        self.train_tokens, self.val_tokens = train_tokens, val_tokens
        torch.manual_seed(recipe["seed"])
        self.model = Transformer(cfg)
        if recipe.get("pos_init_scale") and cfg.positional == "learned":
            init_positions(self.model, recipe["pos_init_scale"])
        self.model.train()
        self.optimizer = make_optimizer(self.model, recipe["lr"], recipe["weight_decay"], recipe.get("pos_lr_mult", 1.0))
        self.generator = torch.Generator().manual_seed(recipe["seed"])
        self.starts = windows(train_tokens, cfg.n_ctx, recipe["stride"])
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        self.step_no = 0
        self.tokens_seen = 0
        self.log: list[dict] = []
        self.dtype = torch.float32

    def next_starts(self) -> torch.Tensor:
        bs = self.recipe["batch_size"]
        if self.cursor + bs > len(self.order):  # a new epoch: reshuffle the windows
            self.order = self.starts[torch.randperm(len(self.starts), generator=self.generator)]
            self.cursor = 0
        out = self.order[self.cursor : self.cursor + bs]
        self.cursor += bs
        return out

    def short_batch(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Curriculum: early steps train on short windows (as many tokens per step, from random starts), which
        lowers the final loss here and lets positions and local attention settle before the full context."""
        n = self.recipe["batch_size"] * self.cfg.n_ctx // length
        starts = torch.randint(0, len(self.train_tokens) - length - 1, (n,), generator=self.generator)
        return batch(self.train_tokens, starts, length)

    def step(self) -> float:
        r = self.recipe
        lr = lr_at(self.step_no, r["lr"], r["min_lr"], r["warmup"], r["steps"])
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        if self.step_no < r.get("short_steps", 0):
            x, y = self.short_batch(r["short_ctx"])
        else:
            x, y = batch(self.train_tokens, self.next_starts(), self.cfg.n_ctx)
        loss = loss_on(self.model, x, y, self.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), r["grad_clip"])
        self.optimizer.step()
        self.step_no += 1
        self.tokens_seen += y.numel()
        return loss.item()

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(), "order": self.order,
            "cursor": self.cursor, "step": self.step_no, "tokens_seen": self.tokens_seen,
            "log": json.dumps(self.log),
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.order, self.cursor = state["order"], state["cursor"]
        self.step_no, self.tokens_seen = state["step"], state["tokens_seen"]
        self.log = json.loads(state["log"])


def snapshot_schedule(steps: int, n: int) -> list[int]:
    return sorted({round(i * steps / (n - 1)) for i in range(n)})


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
    command = "python -m core.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = dict(RECIPES[args.preset])
    if args.steps:
        recipe["steps"] = args.steps
    cfg: ModelConfig = PRESETS[args.preset]
    out = args.out or MODELS_DIR / args.preset
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)

    files = [args.corpus / f for f in recipe["files"]]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"corpus files not found: {missing}")
    train_stories, val_stories = split_stories(read_stories(files), recipe["val_every"])
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

    trainer = Trainer(cfg, train_tokens, val_tokens, recipe)
    trainer.dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    state_path = out / "train_state.pt"
    elapsed_before = 0.0
    if args.resume and state_path.exists():
        state = torch.load(state_path, weights_only=True)
        trainer.load_state(state)
        elapsed_before = trainer.log[-1]["elapsed_s"] if trainer.log else 0.0
        print(f"resumed at step {trainer.step_no}", flush=True)
    snaps = snapshot_schedule(recipe["steps"], recipe["snapshots"])
    start_time = time.time() - elapsed_before
    bar = tqdm(total=recipe["steps"], initial=trainer.step_no, unit="step", dynamic_ncols=True, mininterval=5)
    while True:
        s = trainer.step_no
        if s in snaps and s < recipe["steps"]:
            save_weights(trainer.model, out / "checkpoints" / f"step_{s:06d}.safetensors", half=True)
        if s % recipe["eval_every"] == 0 or s == recipe["steps"]:
            val = evaluate(trainer.model, val_tokens, cfg.n_ctx, recipe["batch_size"], recipe["eval_batches"])
            entry = {"step": s, "val_loss": round(val, 4), "tokens": trainer.tokens_seen,
                     "elapsed_s": round(time.time() - start_time, 1)}
            trainer.log.append(entry)
            bar.write(json.dumps(entry))
            torch.save(trainer.state(), state_path)
        if s >= recipe["steps"]:
            break
        loss = trainer.step()
        trainer.log.append({"step": trainer.step_no, "train_loss": round(loss, 4)})
        elapsed = time.time() - start_time
        bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{trainer.tokens_seen / max(elapsed, 1e-9):,.0f}")
        bar.update(1)
    bar.close()
    wall = time.time() - start_time

    trainer.model.eval()
    save_dir(trainer.model, out, spec)
    (out / "training_log.json").write_text(json.dumps({
        "preset": args.preset, "command": command, "recipe": recipe, "config": dataclasses.asdict(cfg),
        "train_tokens": len(train_tokens), "val_tokens": len(val_tokens), "tokens_seen": trainer.tokens_seen,
        "wall_time_s": round(wall, 1), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "snapshot_steps": snaps, "log": trainer.log,
    }, indent=1) + "\n")
    state_path.unlink(missing_ok=True)
    print(f"done: {recipe['steps']} steps, {trainer.tokens_seen:,} tokens in {wall / 60:.1f} min → {out}", flush=True)
    if out.resolve() == (MODELS_DIR / args.preset).resolve():
        from core import evaluate as model_card  # measures the shipped model and writes its card

        model_card.main(["--name", args.preset, "--corpus", str(args.corpus)])



if __name__ == "__main__":
    main()
