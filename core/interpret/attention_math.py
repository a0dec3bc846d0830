"""One head's attention for one query, recomputed step by step from the recorded q, k and v (q·k, ÷√d, the mask,
softmax, the weighted sum), and the one-word edit the A/B view compares."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from core.trace import Trace


@dataclass
class QueryMath:
    """One query token of one head, step by step: q·k for every key, ÷√hs, the mask, the softmax, and the weighted
    sum of the values — recomputed from the model's own q, k, v and set beside what the model recorded."""

    q: torch.Tensor  # (hs,)
    dots: torch.Tensor  # (T,) q·k for each key
    scaled: torch.Tensor  # (T,) ÷ √hs
    visible: torch.Tensor  # (T,) bool: keys this query may see
    weights: torch.Tensor  # (T,) softmax over the visible keys
    model_weights: torch.Tensor  # (T,) the model's own pattern row
    z: torch.Tensor  # (hs,) Σ weight · v
    z_error: float  # max |z − the model's z|
    score_error: float  # max |scaled − the model's scores| over visible keys



def query_math(tr: Trace, layer: int, head: int, query: int) -> QueryMath:
    """`tr` must hold `attention_record(layer)`."""
    q_all, k_all, v_all = tr.qkv(layer)
    kv = tr.config.kv_head(head)
    q, k, v = q_all[query, head], k_all[:, kv], v_all[:, kv]  # (hs,), (T, hs), (T, hs)
    dots = k @ q  # (T,)
    scaled = dots / math.sqrt(tr.config.head_dim)
    visible = ~tr.hidden()[query]
    weights = scaled.masked_fill(~visible, float("-inf")).softmax(-1)
    z = weights @ v
    recorded = tr.attn_scores(layer)[head, query]
    return QueryMath(
        q=q, dots=dots, scaled=scaled, visible=visible, weights=weights, model_weights=tr.pattern(layer)[head, query],
        z=z, z_error=float((z - tr.z(layer)[query, head]).abs().max()),
        score_error=float(torch.where(visible, scaled - recorded, 0).abs().max()),
    )



# Word swaps for an A/B experiment: a one-word change that keeps the sentence grammatical.
SWAPS = [("it", "he"), ("he", "she"), ("she", "he"), ("girl", "boy"), ("boy", "girl"), ("cat", "dog"),
         ("dog", "cat"), ("park", "shop"), ("bank", "shop"), ("river", "road"), ("book", "ball"), ("Tom", "Sam"),
         ("Lily", "Anna"), ("tired", "wide"), ("money", "bread"), ("teacher", "doctor"), ("student", "child"),
         ("little", "big"), ("big", "little"), ("world", "moon"), ("the", "a"), ("a", "the")]



def one_word_edit(tokenizer, text: str) -> tuple[str, str, str] | None:
    """(edited text, word, replacement): the last word of `text` that a swap in SWAPS changes without changing the
    number of tokens (so the two attention patterns line up position by position); None when no swap fits."""
    words = list(re.finditer(r"\b\w+\b", text))[-40:]  # the last words: a 20,000-character paste stays quick
    n = len(tokenizer.encode(text))
    for match in reversed(words):
        for word, other in SWAPS:
            if match.group() == word:
                edited = text[: match.start()] + other + text[match.end():]
                if len(tokenizer.encode(edited)) == n:
                    return edited, word, other
    return None
