"""Learning in the app, in seconds on a CPU: fine-tune a copy of a small model on a few sentences, or pretrain a tiny
GPT from random weights on a shipped text. Both are runs of the one training loop (core.training: its Recipe, its
loss, `Trainer.run`), with the settings checked first and a constant learning rate (warmed up when pretraining).
The loss is reported step by step (`progress(step, loss)`); the model passed in is never modified (a test compares
every parameter bit for bit); the same seed gives the same result.

Also what the pages measure around it: which weights moved (`weight_change`), the loss on a text (`text_loss`),
the probability of a continuation (`continuation_prob`), and a fingerprint of a model's weights (`fingerprint`), which
shows that prompting changes none.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from core.config import ModelConfig
from core.loading.integrity import ASSETS, check_asset
from core.model import Transformer
from core.training import Recipe, Trainer, check_settings, encode_stories, initial_model, loss_on, random_windows

FINE_TUNE_MAX_PARAMS = 5_000_000  # a copy plus AdamW's two moments: ~4 × 4 bytes a parameter, ~80 MB at this size
MAX_STEPS = 2000
PRETRAIN_TEXT = ASSETS / "texts" / "pretrain_stories.txt"
HELD_OUT_TEXT = ASSETS / "texts" / "bpe_sample.txt"  # a story written for Glassbox: in no training set
Progress = Callable[[int, float], None]


def shipped_text(path=PRETRAIN_TEXT) -> str:
    check_asset(path)
    return path.read_text(encoding="utf-8")


def _train(model: Transformer, ids: torch.Tensor, recipe: Recipe, progress: Progress | None,
           checkpoint: Callable[[int], None] | None = None) -> list[float]:
    """`model` trained in place on `ids` by the one loop, then frozen; returns the loss of every step. Batches and
    dropout draw from streams seeded by the recipe; torch's global stream is left alone."""
    generator = torch.Generator().manual_seed(recipe.seed)
    trainer = Trainer(model, recipe, lambda step: random_windows(ids, model.config.n_ctx, recipe.batch_size, generator),
                      loss=loss_on, dropout_seed=recipe.seed)  # this module's loss_on: a test makes it diverge
    losses = trainer.run(progress=progress, checkpoint=checkpoint)
    model.eval().requires_grad_(False)
    return losses


def _fresh_copy(model: Transformer) -> Transformer:
    """A trainable copy on the CPU sharing nothing with `model` but its (read-only) tokenizer."""
    with torch.random.fork_rng(devices=[]):  # its random start is overwritten: leave the caller's stream alone
        copy = Transformer(model.config)
    copy.load_state_dict({k: v.detach().clone().cpu() for k, v in model.state_dict().items()})
    copy.tokenizer = model.tokenizer
    return copy.requires_grad_(True)


def fine_tune(model: Transformer, texts: list[str], steps: int, lr: float = 1e-3, seed: int = 0,
              progress: Progress | None = None, batch_size: int = 8) -> Transformer:
    """A new model: a copy of `model` trained for `steps` steps on the texts (next-token loss, AdamW, no weight
    decay). `model` is untouched. Refuses models over FINE_TUNE_MAX_PARAMS parameters (memory per learner) and
    more than MAX_STEPS steps. The returned model's `losses` holds the loss of each step."""
    if model.num_params() > FINE_TUNE_MAX_PARAMS:
        raise ValueError(f"{model.config.name} has {model.num_params():,} parameters; fine-tuning in the app is for "
                         f"models up to {FINE_TUNE_MAX_PARAMS:,} (a copy and its optimiser state per learner)")
    check_settings(steps, lr, batch_size, MAX_STEPS)
    if model.tokenizer is None:
        raise ValueError("fine-tuning on text needs a model with a tokenizer")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a list of strings (one sentence or story each)")
    ids = encode_stories(model.tokenizer, [t for t in texts if t.strip()])
    if len(ids) < 2:
        raise ValueError("nothing to learn from: type at least one sentence")
    tuned = _fresh_copy(model)
    recipe = Recipe(steps=steps, batch_size=batch_size, lr=lr, min_lr=lr, seed=seed)  # constant rate, no decay
    tuned.losses = _train(tuned, ids, recipe, progress)
    tuned.source = f"a copy of {model.config.name} fine-tuned for {steps} steps"
    return tuned


@dataclass
class Pretrained:
    """A tiny GPT trained from random weights: its config, the loss of every step, and the weights at a few steps
    (`steps`, the first being 0 = random), so the pages can look at the model while it learned."""

    config: ModelConfig
    tokenizer: object
    losses: list[float]
    snapshots: dict[int, dict[str, torch.Tensor]] = field(repr=False)

    @property
    def steps(self) -> list[int]:
        return sorted(self.snapshots)

    def model(self, step: int) -> Transformer:
        model = Transformer(self.config)
        model.load_state_dict(self.snapshots[step])
        model.tokenizer = self.tokenizer
        model.source = f"a tiny GPT pretrained in the app, step {step}"
        return model.eval().requires_grad_(False)


def tiny_gpt(vocab_size: int) -> ModelConfig:
    """The model the app pretrains: GPT-2's design at toy size (about 0.2M parameters with a 2,048-token vocabulary)."""
    return ModelConfig(vocab_size=vocab_size, n_ctx=64, d_model=64, n_layers=2, n_heads=4, dropout=0.0,
                       name="tiny GPT trained here")


def pretrain(tokenizer, text: str, steps: int, seed: int = 0, lr: float = 3e-3, batch_size: int = 16,
             n_snapshots: int = 5, progress: Progress | None = None) -> Pretrained:
    """Train `tiny_gpt` from random weights on `text` for `steps` steps; keep the weights at n_snapshots steps
    spread from 0 to the end."""
    check_settings(steps, lr, batch_size, MAX_STEPS)
    if not isinstance(n_snapshots, int) or n_snapshots < 1:
        raise ValueError(f"n_snapshots must be at least 1, not {n_snapshots!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("nothing to learn from: the text is empty")
    ids = encode_stories(tokenizer, [p for p in re.split(r"\n\s*\n", text) if p.strip()])
    if len(ids) < 2:
        raise ValueError("nothing to learn from: the text has fewer than two tokens")
    cfg = tiny_gpt(tokenizer.n_vocab)
    recipe = Recipe(steps=steps, batch_size=batch_size, lr=lr, min_lr=lr, warmup=min(50, steps), seed=seed)
    with torch.random.fork_rng(devices=[]):  # the weights come from a seeded stream; the caller's is left alone
        model = initial_model(cfg, recipe)
    model.tokenizer = tokenizer
    keep = sorted({round(steps * i / (n_snapshots - 1)) for i in range(n_snapshots)}) if n_snapshots > 1 else [steps]
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(step: int) -> None:
        if step in keep:
            snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    losses = _train(model, ids, recipe, progress, checkpoint=snapshot)
    return Pretrained(cfg, tokenizer, losses, snapshots)


COMPONENTS = re.compile(r"^(embed|pos_embed|ln_final|blocks\.\d+\.(attn|mlp|ln1|ln2))")


def weight_change(before: Transformer, after: Transformer) -> dict[str, float]:
    """How far each component moved: ‖after − before‖ / ‖before‖ over its parameters, by "embed", "pos_embed",
    "blocks.{i}.attn", "blocks.{i}.mlp", "blocks.{i}.norms", "ln_final"."""
    moved: dict[str, list[float]] = {}
    old = before.state_dict()
    for name, new in after.state_dict().items():
        m = COMPONENTS.match(name)
        if m is None:
            continue
        part = re.sub(r"\.ln[12]$", ".norms", m.group(0))
        delta, base = moved.setdefault(part, [0.0, 0.0]), old[name].float().cpu()
        delta[0] += float((new.float().cpu() - base).pow(2).sum())
        delta[1] += float(base.pow(2).sum())
    return {part: math.sqrt(d) / math.sqrt(b) if b else 0.0 for part, (d, b) in moved.items()}


def component_label(part: str) -> str:
    """A weight_change key in words: "blocks.3.mlp" → "layer 3 feed-forward"."""
    fixed = {"embed": "token embedding", "pos_embed": "position embedding", "ln_final": "final norm"}
    if part in fixed:
        return fixed[part]
    _, layer, kind = part.split(".")
    return f"layer {layer} " + {"attn": "attention", "mlp": "feed-forward", "norms": "norms"}[kind]


@torch.inference_mode()
def text_loss(model: Transformer, text: str) -> float:
    """Mean next-token loss (nats) of the model over a text, read in consecutive windows of its context."""
    ids = torch.tensor(model.tokenizer.encode(text), dtype=torch.long)
    n = model.config.n_ctx
    total, count = 0.0, 0
    for start in range(0, max(1, len(ids) - 1), n):
        chunk = ids[start: start + n + 1]
        if len(chunk) < 2:
            break
        logits, _ = model(chunk[None, :-1].to(model.device), logits="all")
        total += F.cross_entropy(logits[0].float().cpu(), chunk[1:], reduction="sum").item()
        count += len(chunk) - 1
    return total / max(count, 1)


@torch.inference_mode()
def continuation_prob(model: Transformer, prompt: str | list[int], continuation: str | list[int]) -> float:
    """P(continuation | prompt): the product of each continuation token's probability, token by token."""
    tok = model.tokenizer
    p_ids = tok.encode(prompt) if isinstance(prompt, str) else list(prompt)
    c_ids = tok.encode_fragment(continuation) if isinstance(continuation, str) else list(continuation)
    if not c_ids:
        raise ValueError("the continuation has no tokens")
    ids = torch.tensor([p_ids + c_ids], dtype=torch.long, device=model.device)
    logits, _ = model(ids, logits="all")  # (1, T, V)
    logp = logits[0, len(p_ids) - 1: -1].float().log_softmax(-1)  # the positions that predict the continuation
    return math.exp(float(logp.gather(1, torch.tensor(c_ids, device=logp.device)[:, None]).sum()))


def fingerprint(model: Transformer) -> str:
    """SHA-256 over every parameter's bytes (first 16 hex digits): equal fingerprints, identical weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]
