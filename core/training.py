"""The one training loop of Glassbox: a Recipe, the loss, the optimiser and its schedule, and `Trainer.run`.

Every model Glassbox trains goes through it: the embedded model (`python -m tools.train`), the English→French
translator (`python -m tools.train_translator`), and fine-tuning and pretraining in the app (core.learning). A
recipe (`Recipe`) and a training log (`TrainingLog`) are frozen dataclasses, validated when read from JSON like
`ModelConfig.from_dict`. A run differs from another only by its recipe, its model and where its batches come from
(`Batches`: step → inputs, targets); the loop calls back before each step (`checkpoint`: snapshots, validation) and
after it (`progress`: the loss, for a log or a live curve), and raises NonFinite when the loss stops being a number.

Data of the story corpus: the TinyStories excerpts in ../shared/corpus (never committed). Stories are split on blank
lines; every `val_every`-th story is held out for validation, so no story is in both splits. Stories are joined
with the end-of-text token; input/target pairs come from a sliding window of the context length with a
configurable stride (targets are inputs shifted by one token), shuffled once per epoch (`CorpusBatches`).

Optimisation: AdamW (weight decay on matrices only), linear warmup then cosine decay, gradient clipping. Recipe
options that exist for the shipped model's attention (each measured, see init_positions): a short-window curriculum
(`short_ctx` tokens for the first `short_steps` steps), a learned position table that starts as waves
(`pos_init_scale`) and learns `pos_lr_mult` times faster without weight decay.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import ModelConfig
from core.loading.integrity import NonFinite
from core.model import Transformer

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


MAX_LR = 1.0  # AdamW steps of this size already throw a model's weights around; more is a typo (3 for 3e-3)
MAX_BATCH = 1024


def check_settings(steps: int, lr: float, batch_size: int, max_steps: int | None = None) -> None:
    """A clear ValueError for training settings that cannot give a model: a learning rate that is not a finite
    number in (0, MAX_LR] (NaN or 1e9 trains every weight to NaN, silently), a batch size or step count below 1."""
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or not 0 < lr <= MAX_LR:
        raise ValueError(f"the learning rate must be a number above 0 and at most {MAX_LR:g}, not {lr!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"the batch size must be a whole number from 1 to {MAX_BATCH}, not {batch_size!r}")
    top = max_steps if max_steps is not None else float("inf")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= top:
        raise ValueError(f"steps must be a whole number from 1{f' to {max_steps}' if max_steps else ''}, not {steps!r}")


def _checked(cls, d: dict[str, Any]):
    """cls(**d) after refusing unknown fields and values of the wrong type (ints count as floats; a JSON list is
    read as a tuple field)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    none = type(None)
    hints = {"int": int, "float": (int, float), "str": str, "bool": bool, "int | None": (int, none),
             "float | None": (int, float, none)}
    d = {k: tuple(v) if str(fields[k].type).startswith("tuple") and isinstance(v, list) else v for k, v in d.items()}
    def fits(value, kind) -> bool:
        return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))

    for name, value in d.items():
        hint = str(fields[name].type)
        if hint.startswith("tuple["):  # tuple[str, ...], tuple[int, ...], tuple[float, float]: each item checked
            item = hints.get(hint.removeprefix("tuple[").split(",")[0])
            ok = isinstance(value, tuple) and (item is None or all(fits(v, item) for v in value))
        else:
            ok = hint not in hints or fits(value, hints[hint])
        if not ok:
            raise ValueError(f"{cls.__name__}.{name} must be {fields[name].type}, not {value!r}")
    return cls(**d)


@dataclass(frozen=True)
class Recipe:
    """How a model is trained: the loop's settings, then what a command-line run reads and keeps (off by default).
    The model's shape is its ModelConfig. `min_lr` equal to `lr` gives a constant rate after the warmup."""

    steps: int
    batch_size: int
    lr: float
    min_lr: float  # the cosine schedule's floor
    warmup: int = 0  # steps of linear warmup
    weight_decay: float = 0.0  # on matrices only
    grad_clip: float = 1.0
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW's
    eps: float = 1e-8  # AdamW's
    no_decay: tuple[str, ...] = ()  # matrices kept out of weight decay, by name
    short_ctx: int = 0  # curriculum: window length of the first short_steps steps (0: off)
    short_steps: int = 0
    pos_lr_mult: float = 1.0  # learning-rate multiplier of a learned position table
    pos_init_scale: float = 0.0  # > 0: the learned position table starts as waves of this size (init_positions)
    files: tuple[str, ...] = ()  # the story corpus files, read from CORPUS
    stride: int = 0  # between training windows of the story corpus
    val_every: int = 0  # every val_every-th story is held out
    pool: int = 0  # the translator: training sentences drawn once from its grammar
    eval_every: int = 0  # steps between validation measurements
    eval_batches: int = 0
    snapshots: int = 0  # weight snapshots spread evenly from step 0 to the end (snapshot_schedule) ...
    snapshot_steps: tuple[int, ...] = ()  # ... or at these steps

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        return _checked(cls, d)


# The shipped model is "tiny-stories-1m" (its ModelConfig is PRESETS["tiny-stories-1m"]).
RECIPES: dict[str, Recipe] = {
    "tiny-stories-1m": Recipe(
        files=("tinystories_a.txt", "tinystories_b.txt"), steps=2400, batch_size=16, lr=6e-3, min_lr=3e-4,
        warmup=100, weight_decay=0.1, grad_clip=1.0, stride=128, eval_every=100, eval_batches=8, snapshots=8,
        val_every=20, seed=1337, short_ctx=64, short_steps=800, pos_lr_mult=10.0, pos_init_scale=0.06,
    ),
}


@dataclass(frozen=True)
class LogEntry:
    """One line of the training log: a training step's loss, or a validation measurement."""

    step: int
    train_loss: float | None = None
    val_loss: float | None = None
    tokens: int | None = None  # tokens seen so far (validation lines)
    elapsed_s: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LogEntry:
        return _checked(cls, d)


@dataclass(frozen=True)
class TrainingLog:
    """training_log.json: how a shipped model was trained, step by step."""

    preset: str
    command: str
    recipe: Recipe
    config: ModelConfig
    train_tokens: int
    val_tokens: int
    tokens_seen: int
    wall_time_s: float
    threads: int
    torch: str
    snapshot_steps: tuple[int, ...]
    log: tuple[LogEntry, ...]

    def curve(self, kind: str) -> tuple[list[int], list[float]]:
        """Steps and values of "train_loss" or "val_loss"."""
        points = [(e.step, getattr(e, kind)) for e in self.log if getattr(e, kind) is not None]
        return [s for s, _ in points], [v for _, v in points]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        log = [{k: v for k, v in dataclasses.asdict(e).items() if v is not None} for e in self.log]
        return {**d, "recipe": self.recipe.to_dict(), "config": self.config.to_dict(),
                "snapshot_steps": list(self.snapshot_steps), "log": log}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingLog:
        try:
            parsed = {**d, "recipe": Recipe.from_dict(d["recipe"]), "config": ModelConfig.from_dict(d["config"]),
                      "snapshot_steps": tuple(int(s) for s in d["snapshot_steps"]),
                      "log": tuple(LogEntry.from_dict(e) for e in d["log"])}
        except (KeyError, TypeError) as err:
            raise ValueError(f"not a training log: {err!r}") from err
        return _checked(cls, parsed)


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
    """The stories as one token sequence, each followed by the end-of-text token (when the tokenizer has one)."""
    eot = tokenizer.eot_id
    ids: list[int] = []
    for story in stories:
        ids.extend(tokenizer.encode(story))
        if eot is not None:
            ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def windows(tokens: torch.Tensor, n_ctx: int, stride: int) -> torch.Tensor:
    """Start offsets of (input, target) windows: x = tokens[s:s+n_ctx], y = tokens[s+1:s+n_ctx+1]."""
    return torch.arange(0, len(tokens) - n_ctx - 1, stride)


def batch(tokens: torch.Tensor, starts: torch.Tensor, n_ctx: int) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = starts[:, None] + torch.arange(n_ctx + 1)  # (B, n_ctx + 1)
    chunk = tokens[offsets]
    return chunk[:, :-1], chunk[:, 1:]  # (B, T), (B, T)


Batches = Callable[[int], tuple[torch.Tensor, torch.Tensor]]  # step → (inputs, targets)


def random_windows(ids: torch.Tensor, n_ctx: int, batch_size: int, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-token targets: the whole sequence when it fits, else `batch_size` random windows."""
    if len(ids) <= n_ctx + 1:
        return ids[None, :-1], ids[None, 1:]
    return batch(ids, torch.randint(0, len(ids) - n_ctx - 1, (batch_size,), generator=generator), n_ctx)


class CorpusBatches:
    """The story corpus's batches (a `Batches`): sliding windows shuffled once per epoch, and during the curriculum's
    first `short_steps` steps short windows from random starts. Its state belongs to a resumable run."""

    def __init__(self, tokens: torch.Tensor, n_ctx: int, recipe: Recipe):
        self.tokens, self.n_ctx, self.recipe = tokens, n_ctx, recipe
        self.generator = torch.Generator().manual_seed(recipe.seed)
        self.starts = windows(tokens, n_ctx, recipe.stride)
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if step < self.recipe.short_steps:
            return self.short_batch(self.recipe.short_ctx)
        return batch(self.tokens, self.next_starts(), self.n_ctx)

    def next_starts(self) -> torch.Tensor:
        bs = self.recipe.batch_size
        if self.cursor + bs > len(self.order):  # a new epoch: reshuffle the windows
            self.order = self.starts[torch.randperm(len(self.starts), generator=self.generator)]
            self.cursor = 0
        out = self.order[self.cursor : self.cursor + bs]
        self.cursor += bs
        return out

    def short_batch(self, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Curriculum: early steps train on short windows (as many tokens per step, from random starts), which
        lowers the final loss here and lets positions and local attention settle before the full context."""
        n = self.recipe.batch_size * self.n_ctx // length
        starts = torch.randint(0, len(self.tokens) - length - 1, (n,), generator=self.generator)
        return batch(self.tokens, starts, length)

    def state(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "cursor": self.cursor}

    def load_state(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.order, self.cursor = state["order"], state["cursor"]


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


def initial_model(cfg: ModelConfig, recipe: Recipe) -> Transformer:
    """A model of `cfg` from random weights drawn after seeding torch with the recipe's seed (a Trainer's dropout
    then continues that stream), its position table started as waves when the recipe asks."""
    torch.manual_seed(recipe.seed)
    model = Transformer(cfg)
    if recipe.pos_init_scale and cfg.positional == "learned":
        init_positions(model, recipe.pos_init_scale)
    return model


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (less those named in `recipe.no_decay`). With pos_lr_mult ≠ 1 a
    learned position table gets its own group: that many times the learning rate and no weight decay (each row only
    learns from its own position, so it moves slowly)."""
    learned = getattr(model.config, "positional", None) == "learned"
    pos = model.pos_embed.weight if recipe.pos_lr_mult != 1 and learned else None
    named = [(n, p) for n, p in model.named_parameters() if p is not pos]
    decayed = {n for n, p in named if p.dim() >= 2 and n not in recipe.no_decay}
    groups = [{"params": [p for n, p in named if n in decayed], "weight_decay": recipe.weight_decay},
              {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}]
    if pos is not None:
        groups.append({"params": [pos], "weight_decay": 0.0, "lr_mult": recipe.pos_lr_mult})
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas, eps=recipe.eps)


def loss_on(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The one training loss: mean cross-entropy of the next token. A decoder-only model reads `x` and predicts `y`
    (x shifted by one token); an encoder–decoder reads the source `x` and, by teacher forcing, the target `y` less
    its last token, and predicts `y` less its first (<s> + French → French + </s>)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        if model.config.encoder_decoder:
            logits, y = model(x, y[:, :-1]), y[:, 1:]  # (B, T, V), (B, T)
        else:
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


Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.dtype], torch.Tensor]


class Trainer:
    """One training run: a model trained in place by a recipe on batches; `run` is the loop, and what a resumable
    run needs is in `state()`. The schedule, the optimiser, clipping and the divergence check are the same for
    every model; a caller's own work (snapshots, validation, logs, a live curve) goes in run's callbacks."""

    def __init__(self, model: nn.Module, recipe: Recipe, batches: Batches, loss: Loss = loss_on,
                 dropout_seed: int | None = None):
        """Dropout draws from the run's own stream: seeded with `dropout_seed`, else continuing torch's global
        stream from here (where the model's initialisation left it, see initial_model). Nobody else's draws move it,
        and it never moves theirs."""
        self.model, self.recipe, self.batches, self.loss = model, recipe, batches, loss
        self.optimizer = make_optimizer(model, recipe)
        if dropout_seed is None:
            self.rng_state = torch.get_rng_state()
        else:
            self.rng_state = torch.Generator().manual_seed(dropout_seed).get_state()
        self.step_no = 0
        self.tokens_seen = 0
        self.log: list[dict] = []
        self.dtype = torch.float32

    def run(self, until: int | None = None, progress: Callable[[int, float], None] | None = None,
            checkpoint: Callable[[int], None] | None = None) -> list[float]:
        """Train from the current step to `until` (default: the recipe's steps); return this call's losses.
        `checkpoint(step)` comes before each step and once at the end (step = steps done so far), `progress(step,
        loss)` after each; both run inside the run's random stream."""
        until = self.recipe.steps if until is None else until
        losses: list[float] = []
        self.model.train()
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(self.rng_state)
            try:
                while True:
                    if checkpoint is not None:
                        checkpoint(self.step_no)
                    if self.step_no >= until:
                        return losses
                    losses.append(self._step())
                    if progress is not None:
                        progress(self.step_no, losses[-1])
            finally:
                self.rng_state = torch.get_rng_state()

    def _step(self) -> float:
        r = self.recipe
        lr = lr_at(self.step_no, r.lr, r.min_lr, r.warmup, r.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        x, y = self.batches(self.step_no)
        loss = self.loss(self.model, x, y, self.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), r.grad_clip)
        self.optimizer.step()
        self.step_no += 1
        self.tokens_seen += y.numel()
        value = loss.item()
        if not math.isfinite(value):  # never hand back an all-NaN model as if it had learned
            raise NonFinite(f"training diverged at step {self.step_no} (the loss is {value}): try a smaller "
                            "learning rate")
        return value

    def state(self) -> dict:
        batches = self.batches.state() if hasattr(self.batches, "state") else None
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "batches": batches,
                "torch_rng": self.rng_state, "step": self.step_no, "tokens_seen": self.tokens_seen,
                "log": json.dumps(self.log)}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["batches"] is not None:
            self.batches.load_state(state["batches"])
        self.rng_state = state["torch_rng"]
        self.step_no, self.tokens_seen = state["step"], state["tokens_seen"]
        self.log = json.loads(state["log"])


def snapshot_schedule(steps: int, n: int) -> list[int]:
    return sorted({round(i * steps / (n - 1)) for i in range(n)})
