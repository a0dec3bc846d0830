"""Attention heads by what they do: previous-token, first-token, duplicate and induction scores measured on a text
and on repeated random tokens, the label each head earns, one head's pattern over a whole text, and what switching
parts off changes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.model import PATTERN_RECORD, Transformer
from core.trace import Trace, hook, layer_patterns, trace


def previous_token_scores(patterns: Iterable[torch.Tensor]) -> torch.Tensor:
    """(layers, heads): mean attention from each position i ≥ 1 to position i - 1. `patterns`: each layer's (heads,
    T, T) in turn (core.trace.layer_patterns computes them one at a time)."""
    return torch.stack([p.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1) for p in patterns])


def first_token_scores(patterns: Iterable[torch.Tensor]) -> torch.Tensor:
    """(layers, heads): mean attention from positions i ≥ 1 to position 0 (the 'attention sink')."""
    return torch.stack([p[:, 1:, 0].mean(-1) for p in patterns])


def duplicate_token_scores(patterns: Iterable[torch.Tensor], ids: list[int]) -> torch.Tensor:
    """(layers, heads): attention mass on earlier copies of the same token, averaged over positions that have one."""
    t = torch.tensor(ids)
    same = (t[:, None] == t[None, :]).tril(diagonal=-1)  # (T, T): earlier positions holding the same token
    rows = same.any(-1)
    per_layer = [(p * same).sum(-1)[:, rows].mean(-1) if rows.any() else torch.zeros(p.shape[0]) for p in patterns]
    return torch.stack(per_layer)


def induction_scores(patterns: Iterable[torch.Tensor], period: int) -> torch.Tensor:
    """(layers, heads) on a sequence repeated with `period`: attention from i to i - period + 1, the token that
    followed the previous occurrence of the current token (what an induction head copies)."""
    return torch.stack([p.diagonal(offset=-(period - 1), dim1=-2, dim2=-1)[:, period:].mean(-1) for p in patterns])


def text_scores(model: Transformer, tr: Trace) -> dict[str, torch.Tensor]:
    """Previous-token and first-token scores of every head on a text's trace, each layer's pattern computed from the
    stream the trace kept and dropped before the next (core.trace.layer_patterns)."""
    prev, first = [], []
    for p in layer_patterns(model, tr):
        prev.append(previous_token_scores([p])[0])
        first.append(first_token_scores([p])[0])
    return {"previous-token": torch.stack(prev), "first-token": torch.stack(first)}


def repeated_random_ids(model: Transformer, length: int = 24, seed: int = 0) -> list[int]:
    """A random token sequence shown twice: the standard probe for duplicate-token and induction heads."""
    length = min(length, model.config.n_ctx // 2)
    vocab = model.tokenizer.n_vocab - len(model.tokenizer.special_tokens) if model.tokenizer else model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(256 if vocab > 1024 else 0, vocab, (length,), generator=g).tolist()
    return first + first



def best_head(scores: torch.Tensor) -> tuple[int, int, float]:
    """(layer, head, score) of the highest entry of a (layers, heads) score table."""
    flat = int(scores.argmax())
    return flat // scores.shape[1], flat % scores.shape[1], float(scores.max())



@dataclass
class HeadLabels:
    scores: dict[str, torch.Tensor]  # kind → (layers, heads)

    def __post_init__(self) -> None:
        self._table = {k: v.tolist() for k, v in self.scores.items()}  # Python floats: 270 heads × 4 kinds per page

    def best(self, kind: str) -> tuple[int, int, float]:
        return best_head(self.scores[kind])

    def label(self, layer: int, head: int, threshold: float = 0.4) -> str:
        kind, score = max(((k, v[layer][head]) for k, v in self._table.items()), key=lambda kv: kv[1])
        return kind if score >= threshold else "mixed"

    def summary(self, strongest: int = 3) -> dict[str, tuple[int, list[tuple[int, int, float]]]]:
        """label → (how many heads carry it, the strongest few as (layer, head, score)), most common label first."""
        n_layers, n_heads = next(iter(self.scores.values())).shape
        heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
        out = {}
        for kind in [*self.scores, "mixed"]:
            members = [(lay, h) for lay, h in heads if self.label(lay, h) == kind]
            score = self.scores.get(kind)
            ranked = sorted(((lay, h, self._table[kind][lay][h]) for lay, h in members), key=lambda x: -x[2]) \
                if score is not None else [(lay, h, 0.0) for lay, h in members]
            if members:
                out[kind] = (len(members), ranked[:strongest])
        return dict(sorted(out.items(), key=lambda kv: -kv[1][0]))



def sequence_scores(model: Transformer, seed: int = 0) -> dict[str, torch.Tensor]:
    """Duplicate-token and induction scores of every head on a repeated random sequence: they do not depend on the
    learner's text, so a caller can compute them once per model."""
    ids = repeated_random_ids(model, seed=seed)
    rep = trace(model, ids, record=(PATTERN_RECORD,), logits="none")
    patterns = [rep.pattern(layer) for layer in range(model.config.n_layers)]
    return {"duplicate-token": duplicate_token_scores(patterns, ids), "induction": induction_scores(patterns, len(ids) // 2)}



def head_labels(model: Transformer, text_trace: Trace, seed: int = 0,
                sequence: dict[str, torch.Tensor] | None = None) -> HeadLabels:
    """Scores of every head for each kind: previous- and first-token on the given text's trace (`text_scores`),
    duplicate-token and induction on a repeated random sequence (`sequence_scores`, computed here unless given)."""
    return HeadLabels({**text_scores(model, text_trace),
                       **(sequence if sequence is not None else sequence_scores(model, seed))})



@dataclass(frozen=True)
class HeadOverview:
    """One head's whole pattern over a long input, reduced to what a screen can hold: `pooled` (c, c), the largest
    weight in each tile of `tile` × `tile` (query, key) pairs (a thin diagonal or a column on the first token
    stays visible; an average would fade them), and the pattern's mean weight on the first token, on the previous
    token and on the token itself, and its mean reach (query − key, weighted, in tokens)."""

    pooled: torch.Tensor
    tile: int
    first_token: float
    previous: float
    own: float
    reach: float



def head_overview(pattern: torch.Tensor, cells: int = 256) -> HeadOverview:
    """`pattern` (T, T), rows summing to 1 (e.g. core.trace.head_pattern on a long input)."""
    T = pattern.shape[-1]
    tile = max(1, math.ceil(T / cells))
    pooled = F.max_pool2d(pattern[None, None], tile, ceil_mode=True)[0, 0]
    at = torch.arange(T, dtype=pattern.dtype)
    return HeadOverview(
        pooled=pooled, tile=tile, first_token=float(pattern[:, 0].mean()),
        previous=float(pattern.diagonal(-1).mean()) if T > 1 else 0.0, own=float(pattern.diagonal().mean()),
        reach=float((at - pattern @ at).mean()),
    )



def output_change(model: Transformer, ids: list[int], ablate: dict) -> torch.Tensor:
    """(T,) cosine similarity between each token's final vector (the last block's output) with nothing switched off
    and with `ablate` switched off: 1 means unchanged. For encoders, which have no next-token distribution."""
    last = hook(model.config.n_layers - 1, "hook_resid_post")
    before = trace(model, ids, record=(last,), logits="none")[last]
    after = trace(model, ids, record=(last,), logits="none", ablate=ablate)[last]
    return torch.nn.functional.cosine_similarity(before, after, dim=-1)



def induction_loss_advantage(model: Transformer, ids: list[int], period: int, ablate: dict | None = None) -> float:
    """On a sequence repeated with `period`: the mean next-token loss (nats) on the first copy minus on the second.
    A model with induction heads predicts the second copy from the first, so the advantage is large."""
    logits = trace(model, ids, record=(), logits="all", ablate=ablate).all_logits  # (T, V)
    target = torch.tensor(ids[1:])
    loss = F.cross_entropy(logits[:-1], target, reduction="none")  # (T-1,) loss of predicting token t+1
    first, second = loss[: period - 1], loss[period:]
    return float(first.mean() - second.mean())
