"""Position information: the learned or sinusoidal table, the word-order experiment (shuffled words, positions
removed), RoPE's rotation of one dimension pair."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from core.model import Transformer, rope_inv_freq
from core.trace import Trace, hook, trace


def position_table(model: Transformer, n_rows: int) -> torch.Tensor | None:
    """(n_rows, d) a copy of the first rows of a learned position table (None for RoPE or fixed sinusoids)."""
    if model.config.positional != "learned":
        return None
    return model.pos_embed.weight[:n_rows].detach().float().cpu().clone()



@dataclass
class OrderExperiment:
    """The same tokens in another order, with and without the model's position signal.

    Kept in place: special tokens ([CLS], [SEP]) and, for a decoder, the last token — so the next-token prediction
    is made by the same word in both orders and only the order of the words before it changes."""

    original: list[int]
    shuffled: list[int]
    moved_from: list[int]  # moved_from[i]: the original position of the token now at position i
    probs: dict[tuple[str, bool], torch.Tensor] | None  # ("original" | "shuffled", positions?) → (V,); None: encoder
    same_token_cosine: dict[bool, torch.Tensor]  # positions? → (T,) cosine of each token's final vector, both orders



def shuffle_keeping(ids: list[int], keep: set[int], seed: int) -> list[int]:
    """Positions of `ids` in a seeded shuffle that leaves the positions in `keep` where they are (and, when possible,
    moves at least one token)."""
    free = [i for i in range(len(ids)) if i not in keep]
    rng = random.Random(seed)
    order = list(free)
    for _ in range(20):
        rng.shuffle(order)
        if [ids[i] for i in order] != [ids[i] for i in free]:
            break
    moved = list(range(len(ids)))
    for slot, source in zip(free, order):
        moved[slot] = source
    return moved



def word_order_experiment(model: Transformer, tr: Trace, seed: int = 0) -> OrderExperiment:
    """The text's trace `tr` (the original order, positions on) beside three runs that change one thing each: the
    words shuffled, the position signal removed, both."""
    ids = tr.token_ids
    special = set(model.tokenizer.special_tokens.values()) if model.tokenizer else set()
    keep = {i for i, t in enumerate(ids) if t in special}
    if model.config.causal:
        keep.add(len(ids) - 1)
    moved = shuffle_keeping(ids, keep, seed)
    shuffled = [ids[i] for i in moved]
    last = hook(model.config.n_layers - 1, "hook_resid_post")
    runs = {(name, pos): tr if (name, pos) == ("original", True) else trace(model, order, record=(last,),
                                                                             positions=pos)
            for name, order in (("original", ids), ("shuffled", shuffled)) for pos in (True, False)}
    cosine = {}
    for pos in (True, False):
        a = runs[("original", pos)][last][moved]  # (T, d): the original run's vectors, in the shuffled order
        cosine[pos] = torch.nn.functional.cosine_similarity(a, runs[("shuffled", pos)][last], dim=-1)
    probs = {key: tr.probs for key, tr in runs.items()} if model.config.lm_head else None
    return OrderExperiment(ids, shuffled, moved, probs, cosine)



@dataclass
class RopePair:
    """One dimension pair (j, j + hs/2) of one head's q and k on a text, before and after RoPE turns it."""

    radians_per_position: float
    q_before: torch.Tensor  # (T, 2)
    q_after: torch.Tensor  # (T, 2): what the model used
    k_before: torch.Tensor  # (T, 2)
    k_after: torch.Tensor  # (T, 2)



def rope_pair(tr: Trace, layer: int, head: int, pair: int) -> RopePair:
    """`tr` must hold `attention_record(layer)` of a RoPE model. The recorded q and k are after the rotation; turning
    each token's pair back by position × frequency gives what the projections produced before it."""
    cfg = tr.config
    half = cfg.head_dim // 2
    freq = float(rope_inv_freq(cfg)[pair])
    angle = torch.arange(tr.n_tokens, dtype=torch.float32) * freq  # (T,)
    cos, sin = angle.cos(), angle.sin()

    def unturn(after: torch.Tensor) -> torch.Tensor:  # (T, 2) turned by +angle → turned back
        x, y = after[:, 0], after[:, 1]
        return torch.stack([x * cos + y * sin, y * cos - x * sin], dim=-1)

    q, k, _ = tr.qkv(layer)
    q_after = q[:, head][:, [pair, pair + half]]  # (T, 2)
    k_after = k[:, cfg.kv_head(head)][:, [pair, pair + half]]
    return RopePair(freq, unturn(q_after), q_after, unturn(k_after), k_after)



def odd_positions(table: torch.Tensor, k: int = 2) -> tuple[list[tuple[int, float]], float]:
    """The k rows of a position table least like their neighbours — (position, mean cosine to the rows before and
    after it) — and the median of that over all rows: a row trained for one special slot stands out."""
    normed = torch.nn.functional.normalize(table.float(), dim=-1)
    step = (normed[:-1] * normed[1:]).sum(-1)  # (n-1,) cosine of each row with the next
    before = torch.cat([step[:1], step])  # row 0 has only a next row: count it twice
    after = torch.cat([step, step[-1:]])
    mean = (before + after) / 2
    lows = mean.topk(k, largest=False)
    return [(int(i), float(v)) for i, v in zip(lows.indices, lows.values)], float(mean.median())
