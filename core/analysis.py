"""Measurements on recorded traces and on weights: head labels, PCA, cosine neighbours, contextual similarity.

These read what the model computed (a Trace, or its weight tables) and summarise it; none re-implements the
forward pass. Pages and the model card call them, so the numbers on screen and in the card are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.model import Transformer
from core.trace import Trace, trace


def previous_token_scores(tr: Trace) -> torch.Tensor:
    """(layers, heads): mean attention from each position i ≥ 1 to position i - 1."""
    return torch.stack(
        [tr.pattern(layer).diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1) for layer in range(tr.config.n_layers)]
    )


def first_token_scores(tr: Trace) -> torch.Tensor:
    """(layers, heads): mean attention from positions i ≥ 1 to position 0 (the 'attention sink')."""
    return torch.stack([tr.pattern(layer)[:, 1:, 0].mean(-1) for layer in range(tr.config.n_layers)])


def duplicate_token_scores(tr: Trace) -> torch.Tensor:
    """(layers, heads): attention mass on earlier copies of the same token, averaged over positions that have one."""
    ids = torch.tensor(tr.token_ids)
    same = (ids[:, None] == ids[None, :]).tril(diagonal=-1)  # (T, T): earlier positions holding the same token
    rows = same.any(-1)
    if not rows.any():
        return torch.zeros(tr.config.n_layers, tr.config.n_heads)
    return torch.stack(
        [(tr.pattern(layer) * same).sum(-1)[:, rows].mean(-1) for layer in range(tr.config.n_layers)]
    )


def induction_scores(tr: Trace, period: int) -> torch.Tensor:
    """(layers, heads) on a sequence repeated with `period`: attention from i to i - period + 1, the token that
    followed the previous occurrence of the current token (what an induction head copies)."""
    return torch.stack(
        [
            tr.pattern(layer).diagonal(offset=-(period - 1), dim1=-2, dim2=-1)[:, period:].mean(-1)
            for layer in range(tr.config.n_layers)
        ]
    )


def repeated_random_ids(model: Transformer, length: int = 24, seed: int = 0) -> list[int]:
    """A random token sequence shown twice: the standard probe for duplicate-token and induction heads."""
    length = min(length, model.config.n_ctx // 2)
    vocab = model.tokenizer.n_vocab - len(model.tokenizer.special_tokens) if model.tokenizer else model.config.vocab_size
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(256 if vocab > 1024 else 0, vocab, (length,), generator=g).tolist()
    return first + first


@dataclass
class HeadLabels:
    scores: dict[str, torch.Tensor]  # kind → (layers, heads)

    def best(self, kind: str) -> tuple[int, int, float]:
        s = self.scores[kind]
        flat = int(s.argmax())
        return flat // s.shape[1], flat % s.shape[1], float(s.max())

    def label(self, layer: int, head: int, threshold: float = 0.4) -> str:
        kind, score = max(((k, float(v[layer, head])) for k, v in self.scores.items()), key=lambda kv: kv[1])
        return kind if score >= threshold else "mixed"


def head_labels(model: Transformer, text_trace: Trace, seed: int = 0) -> HeadLabels:
    """Scores of every head for each kind: previous- and first-token on the given text's trace, duplicate-token and
    induction on a repeated random sequence."""
    ids = repeated_random_ids(model, seed=seed)
    rep = trace(model, ids, record=("blocks.*.attn.hook_pattern",), logits="none")
    return HeadLabels(
        {
            "previous-token": previous_token_scores(text_trace),
            "first-token": first_token_scores(text_trace),
            "duplicate-token": duplicate_token_scores(rep),
            "induction": induction_scores(rep, len(ids) // 2),
        }
    )


def pca(matrix: torch.Tensor, k: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows projected on the top-k principal components, and the fraction of variance each one explains."""
    x = matrix.float() - matrix.float().mean(0)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    var = s**2
    return x @ vh[:k].T, var[:k] / var.sum()


def cosine_neighbours(
    table: torch.Tensor, vector: torch.Tensor, k: int = 10, exclude: set[int] | None = None
) -> list[tuple[int, float]]:
    """The k rows of `table` most similar to `vector` by cosine, skipping ids in `exclude`."""
    # A matrix-vector product and a row-norm reduction: no (V, d) temporaries (F.cosine_similarity would broadcast
    # the vector to the table's size, ~150 MB per temporary for GPT-2's 50k × 768 table).
    table, vector = table.float(), vector.float()
    norms = torch.linalg.vector_norm(table, dim=1) * torch.linalg.vector_norm(vector)
    sims = (table @ vector) / norms.clamp_min(1e-8)
    for i in exclude or ():
        sims[i] = -2.0
    top = sims.topk(min(k, len(sims)))
    return list(zip(top.indices.tolist(), top.values.tolist()))


def residual_stream(tr: Trace, position: int) -> torch.Tensor:
    """(n_layers + 1, d): the token's vector entering block 0, then after each block."""
    rows = [tr["blocks.0.hook_resid_pre"][position]]
    rows += [tr.resid_post(layer)[position] for layer in range(tr.config.n_layers)]
    return torch.stack(rows)


def layerwise_cosine(a: Trace, pos_a: int, b: Trace, pos_b: int) -> torch.Tensor:
    """(n_layers + 1,): cosine similarity of one token in two contexts, layer by layer."""
    return torch.nn.functional.cosine_similarity(residual_stream(a, pos_a), residual_stream(b, pos_b), dim=-1)


def entropy(probs: torch.Tensor) -> float:
    """Shannon entropy in nats; e^entropy is the 'effective number of choices'."""
    p = probs[probs > 0]
    return float(-(p * p.log()).sum())
