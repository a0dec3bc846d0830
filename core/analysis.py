"""Measurements on recorded traces and on weights: head labels, attention for one query, embedding and position
tables, PCA, cosine neighbours, contextual similarity.

These read what the model computed (a Trace, or its weight tables) and summarise it; none re-implements the
forward pass. Pages and the model card call them, so the numbers on screen and in the card are the same. Pages
never read a weight or a recorded name themselves: what they draw comes from here or from Trace helpers, as
fresh arrays and small dataclasses.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import torch

from core.model import Transformer, rope_inv_freq
from core.trace import Trace, hook, trace


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


def best_head(scores: torch.Tensor) -> tuple[int, int, float]:
    """(layer, head, score) of the highest entry of a (layers, heads) score table."""
    flat = int(scores.argmax())
    return flat // scores.shape[1], flat % scores.shape[1], float(scores.max())


@dataclass
class HeadLabels:
    scores: dict[str, torch.Tensor]  # kind → (layers, heads)

    def best(self, kind: str) -> tuple[int, int, float]:
        return best_head(self.scores[kind])

    def label(self, layer: int, head: int, threshold: float = 0.4) -> str:
        kind, score = max(((k, float(v[layer, head])) for k, v in self.scores.items()), key=lambda kv: kv[1])
        return kind if score >= threshold else "mixed"

    def summary(self, strongest: int = 3) -> dict[str, tuple[int, list[tuple[int, int, float]]]]:
        """label → (how many heads carry it, the strongest few as (layer, head, score)), most common label first."""
        n_layers, n_heads = next(iter(self.scores.values())).shape
        heads = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
        out = {}
        for kind in [*self.scores, "mixed"]:
            members = [(lay, h) for lay, h in heads if self.label(lay, h) == kind]
            score = self.scores.get(kind)
            ranked = sorted(((lay, h, float(score[lay, h])) for lay, h in members), key=lambda x: -x[2]) \
                if score is not None else [(lay, h, 0.0) for lay, h in members]
            if members:
                out[kind] = (len(members), ranked[:strongest])
        return dict(sorted(out.items(), key=lambda kv: -kv[1][0]))


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


@dataclass
class Projection:
    """A PCA fitted on some rows: their coordinates, and the axes to place any other row on."""

    coords: torch.Tensor  # (n, k) the fitted rows
    explained: torch.Tensor  # (k,) fraction of the variance along each axis
    mean: torch.Tensor  # (d,)
    axes: torch.Tensor  # (k, d)

    def place(self, rows: torch.Tensor) -> torch.Tensor:
        """(m, k) coordinates of other rows on the same axes."""
        return (rows.float() - self.mean) @ self.axes.T


def pca(matrix: torch.Tensor, k: int = 3) -> Projection:
    """The rows on their top-k principal components."""
    mean = matrix.float().mean(0)
    x = matrix.float() - mean
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    var = s**2
    return Projection(x @ vh[:k].T, var[:k] / var.sum(), mean, vh[:k].clone())


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
    rows = [tr.resid_pre(0)[position]]
    rows += [tr.resid_post(layer)[position] for layer in range(tr.config.n_layers)]
    return torch.stack(rows)


def word_tokens(tokenizer, text: str, word: str) -> list[int]:
    """Positions of the tokens that spell the first whole-word occurrence of `word` in `text` (case-insensitive;
    [] when it does not occur)."""
    found = re.search(r"(?<!\w)" + re.escape(word.strip()) + r"(?!\w)", text, flags=re.IGNORECASE)
    if not found or not word.strip():
        return []
    spans = tokenizer.char_spans(text)
    return [i for i, (a, b) in enumerate(spans) if b > a and a < found.end() and b > found.start()]


@dataclass
class WordInContexts:
    """One word in two sentences, followed through the layers at its last token (in a decoder the last piece of a
    word is the one that has seen the whole word)."""

    positions_a: list[int]  # the tokens spelling the word in A
    positions_b: list[int]
    cosine: torch.Tensor  # (n_layers + 1,): at the input, then after each block
    same_prefix: bool  # A and B hold the same tokens up to the word: a decoder cannot tell them apart there


def word_in_contexts(tokenizer, a: Trace, text_a: str, b: Trace, text_b: str, word: str) -> WordInContexts | None:
    """None when the word is not in both sentences (within the traced tokens)."""
    pos_a, pos_b = word_tokens(tokenizer, text_a, word), word_tokens(tokenizer, text_b, word)
    if not pos_a or not pos_b or pos_a[-1] >= a.n_tokens or pos_b[-1] >= b.n_tokens:
        return None
    same = a.token_ids[: pos_a[-1] + 1] == b.token_ids[: pos_b[-1] + 1]
    return WordInContexts(pos_a, pos_b, layerwise_cosine(a, pos_a[-1], b, pos_b[-1]), same)


def layerwise_cosine(a: Trace, pos_a: int, b: Trace, pos_b: int) -> torch.Tensor:
    """(n_layers + 1,): cosine similarity of one token in two contexts, layer by layer."""
    return torch.nn.functional.cosine_similarity(residual_stream(a, pos_a), residual_stream(b, pos_b), dim=-1)


def temperature_sweep(logits: torch.Tensor, temperatures: list[float]) -> tuple[list[float], list[float]]:
    """Entropy (nats) of softmax(logits / T) and the most likely token's probability, for each T > 0."""
    rows = torch.stack([(logits.float() / t).softmax(-1) for t in temperatures])  # (n, V)
    logs = rows.clamp_min(1e-45).log()
    return (-(rows * logs).sum(-1)).tolist(), rows.max(-1).values.tolist()


def entropy(probs: torch.Tensor) -> float:
    """Shannon entropy in nats; e^entropy is the 'effective number of choices'."""
    p = probs[probs > 0]
    return float(-(p * p.log()).sum())


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


def embedding_pca(model: Transformer, n_rows: int, k: int = 3) -> Projection:
    """The first n_rows embedding rows on their top-k principal components."""
    return pca(model.embed.weight[:n_rows].detach().cpu(), k)


def embedding_rows(model: Transformer, ids: list[int]) -> torch.Tensor:
    """(len(ids), d) copies of these tokens' embedding rows."""
    return model.embed.weight[torch.tensor(ids, dtype=torch.long)].detach().float().cpu().clone()


def high_byte_cluster(model: Transformer) -> tuple[int, float] | None:
    """(how many, mean pairwise cosine) of the embedding rows of the single bytes 0x80–0xFF — tokens an English
    training text never uses on their own; None when the vocabulary has fewer than 64 of them."""
    if model.tokenizer is None or model.tokenizer.kind != "bpe":
        return None
    ids = []
    for b in range(128, 256):
        try:
            ids.append(model.tokenizer.id_of(bytes([b])))
        except (KeyError, AttributeError):
            pass
    if len(ids) < 64:
        return None
    sims = cosine_matrix(embedding_rows(model, ids))
    n = len(ids)
    return n, float((sims.sum() - sims.diagonal().sum()) / (n * n - n))


def token_neighbours(model: Transformer, token_id: int, k: int = 10) -> list[tuple[int, float]]:
    """The k tokens whose embedding rows are closest by cosine to this token's row (itself left out)."""
    table = model.embed.weight.detach()
    return cosine_neighbours(table, table[token_id], k=k, exclude={token_id})


def analogy(model: Transformer, a: int, b: int, c: int, k: int = 8) -> list[tuple[int, float]]:
    """a − b + c in the embedding table, and the k rows nearest to it (a, b and c left out)."""
    table = model.embed.weight.detach()
    return cosine_neighbours(table, table[a] - table[b] + table[c], k=k, exclude={a, b, c})


def position_table(model: Transformer, n_rows: int) -> torch.Tensor | None:
    """(n_rows, d) a copy of the first rows of a learned position table (None for RoPE or fixed sinusoids)."""
    if model.config.positional != "learned":
        return None
    return model.pos_embed.weight[:n_rows].detach().float().cpu().clone()


def cosine_matrix(rows: torch.Tensor) -> torch.Tensor:
    """(n, n) cosine similarity between every pair of rows."""
    normed = torch.nn.functional.normalize(rows.float(), dim=-1)
    return normed @ normed.T


def mean_norm_ratio(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean row length of `a` over mean row length of `b` (how much training grew a table)."""
    return float(a.norm(dim=-1).mean() / b.norm(dim=-1).mean())



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


def word_order_experiment(model: Transformer, ids: list[int], seed: int = 0) -> OrderExperiment:
    special = set(model.tokenizer.special_tokens.values()) if model.tokenizer else set()
    keep = {i for i, t in enumerate(ids) if t in special}
    if model.config.causal:
        keep.add(len(ids) - 1)
    moved = shuffle_keeping(ids, keep, seed)
    shuffled = [ids[i] for i in moved]
    last = hook(model.config.n_layers - 1, "hook_resid_post")
    runs = {(name, pos): trace(model, order, record=(last,), positions=pos)
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
