"""How surprised a decoder is by each token of a text: −log p of the token that came, given the tokens before it.

The mean of these numbers over a text is the language-modelling loss the model was trained to lower (cross-entropy,
in nats per token), and exp(mean) its perplexity: "as unsure as a fair choice among that many tokens". Read from one
trace with every position's logits; an encoder, which sees the words after a token too, has no such number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.trace import Trace


@dataclass(frozen=True)
class Surprisal:
    """Per token of a text (index t = token t; token 0 has no prediction before it, so its entries are NaN / −1)."""

    token_ids: list[int]
    tokens: list[str]
    nll: torch.Tensor  # (T,) −log p(token t | tokens < t), nats; NaN at t = 0
    prob: torch.Tensor  # (T,) p(token t | tokens < t); NaN at t = 0
    rank: torch.Tensor  # (T,) 1 = the model's top guess; −1 at t = 0
    top_ids: torch.Tensor  # (T, k) what the model expected at t, most likely first; −1 at t = 0
    top_probs: torch.Tensor  # (T, k)

    @property
    def mean_loss(self) -> float:
        """Cross-entropy of the text, nats per predicted token (tokens 1 … T−1)."""
        return float(self.nll[1:].mean()) if len(self.token_ids) > 1 else math.nan

    @property
    def perplexity(self) -> float:
        return math.exp(self.mean_loss)

    def most_surprising(self, n: int = 5) -> list[int]:
        """Positions of the n highest −log p, highest first."""
        return self.nll[1:].argsort(descending=True)[:n].add(1).tolist()


def surprisal(tr: Trace, k: int = 5) -> Surprisal:
    """Every token's surprisal from a trace made with logits="all" (position t−1's logits predict token t)."""
    if not tr.config.lm_head:
        raise ValueError(f"{tr.config.name} is an encoder: it reads the words after a token too and has no next-token "
                         "output, so there is no probability of a token given the ones before it")
    logits = tr.all_logits
    if logits is None:
        raise ValueError('surprisal needs every position\'s logits: trace with logits="all"')
    ids = torch.tensor(tr.token_ids)
    logp = logits[:-1].float().log_softmax(-1)  # (T-1, V): the prediction for tokens 1 … T-1
    chosen = logp.gather(1, ids[1:, None])[:, 0]  # (T-1,)
    rank = (logp > chosen[:, None]).sum(-1) + 1  # (T-1,)
    top = logp.topk(min(k, logp.shape[-1]), dim=-1)
    pad = lambda x, value: torch.cat([torch.full((1, *x.shape[1:]), value, dtype=x.dtype), x])  # noqa: E731
    return Surprisal(tr.token_ids, tr.tokens, pad(-chosen, math.nan), pad(chosen.exp(), math.nan), pad(rank, -1),
                     pad(top.indices, -1), pad(top.values.exp(), math.nan))
