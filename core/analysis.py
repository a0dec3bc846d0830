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
from pathlib import Path

import torch
import torch.nn.functional as F

from core.integrity import check_asset
from core.model import Transformer, rope_inv_freq
from core.trace import Trace, grow, hook, lens_tops, trace


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


def sequence_scores(model: Transformer, seed: int = 0) -> dict[str, torch.Tensor]:
    """Duplicate-token and induction scores of every head on a repeated random sequence: they do not depend on the
    learner's text, so a caller can compute them once per model."""
    ids = repeated_random_ids(model, seed=seed)
    rep = trace(model, ids, record=("blocks.*.attn.hook_pattern",), logits="none")
    return {"duplicate-token": duplicate_token_scores(rep), "induction": induction_scores(rep, len(ids) // 2)}


def head_labels(model: Transformer, text_trace: Trace, seed: int = 0,
                sequence: dict[str, torch.Tensor] | None = None) -> HeadLabels:
    """Scores of every head for each kind: previous- and first-token on the given text's trace, duplicate-token and
    induction on a repeated random sequence (`sequence_scores`, computed here unless given)."""
    return HeadLabels(
        {
            "previous-token": previous_token_scores(text_trace),
            "first-token": first_token_scores(text_trace),
            **(sequence if sequence is not None else sequence_scores(model, seed)),
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


# ---- Inside the block: the residual stream, direct logit attribution, the norms, the feed-forward neurons ----

def _decoder_with_final_norm(model: Transformer, what: str) -> None:
    cfg = model.config
    if not cfg.lm_head:
        raise ValueError(f"{cfg.name} is an encoder with no unembedding: it gives no logits, so no {what}")
    if cfg.post_norm:
        raise ValueError(f"{cfg.name} normalises inside the residual stream (post-norm), so the stream is not a sum "
                         f"of its parts and has no {what}")


def _unembed_row(model: Transformer, token_id: int) -> torch.Tensor:
    weight = model.embed.weight if model.unembed is None else model.unembed.weight  # (V, d)
    return weight[token_id]


ATTRIBUTION_RECORD = ("hook_embed", "hook_pos_embed", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out",
                      "blocks.*.attn.hook_z", "blocks.*.hook_resid_post")


class Attribution(dict):
    """Direct logit attribution at the last position: component name → its share of one token's logit.

    Keys: "embed", "pos_embed" (learned or sinusoidal positions only), "blocks.{i}.attn", "blocks.{i}.mlp", and
    "ln_final.bias" where the final norm has a bias. The final residual stream is the sum of the embedding(s) and
    of what every attention layer and MLP added; the final norm is linear in that sum once its scale is fixed, so
    each part's share is  w_t · (γ ⊙ centre(part) / scale)  with w_t the token's unembedding row, γ the final
    norm's gain, centre = subtract the mean (LayerNorm; nothing for RMSNorm) and `scale` the norm's divisor
    measured on the whole final residual (√(var + ε) for LayerNorm, √(mean(x²) + ε) for RMSNorm) — TransformerLens's
    "apply_ln_to_stack". The values sum to the model's logit for the token (`logit`).

    heads: (layers, heads) each head's share of its layer's attention part (its z through its slice of the output
    projection); attn_bias: (layers,) the output projection's bias, the rest of the attention part.
    """

    def __init__(self, parts: dict[str, float], heads: torch.Tensor, attn_bias: torch.Tensor, logit: float,
                 scale: float, token_id: int):
        super().__init__(parts)
        self.heads, self.attn_bias, self.logit, self.scale, self.token_id = heads, attn_bias, logit, scale, token_id

    @staticmethod
    def label(key: str, short: bool = False) -> str:
        """A part's name in words: "blocks.3.mlp" → "layer 3 feed-forward" (short, for a crowded axis: "L3 ffn")."""
        fixed = {"embed": ("token embedding", "embedding"), "pos_embed": ("position vector", "position"),
                 "ln_final.bias": ("final norm's bias", "norm bias")}
        if key in fixed:
            return fixed[key][short]
        _, layer, part = key.split(".")
        if short:
            return f"L{layer} {'attn' if part == 'attn' else 'ffn'}"
        return f"layer {layer} {'attention' if part == 'attn' else 'feed-forward'}"


def logit_attribution(model: Transformer, tr: Trace, token_id: int) -> Attribution:
    """How much the embedding, each attention layer (and head) and each MLP add to `token_id`'s logit at the last
    position of `tr` (see Attribution). Traces again when `tr` lacks ATTRIBUTION_RECORD's tensors. Encoders and
    post-norm models raise ValueError (no logits; no sum of parts)."""
    _decoder_with_final_norm(model, "logit attribution")
    cfg = model.config
    if not 0 <= token_id < cfg.vocab_size:
        raise ValueError(f"token id {token_id} not in 0..{cfg.vocab_size - 1}")
    tr = grow(model, tr, ATTRIBUTION_RECORD)
    norm = model.ln_final
    final = tr.resid_post(cfg.n_layers - 1)[-1].double()  # (d,)
    layer_norm = isinstance(norm, torch.nn.LayerNorm)
    if layer_norm:
        scale = math.sqrt(float(final.var(unbiased=False)) + norm.eps)
    else:
        scale = math.sqrt(float(final.pow(2).mean()) + (norm.eps or torch.finfo(final.dtype).eps))
    w = _unembed_row(model, token_id).double().cpu()  # (d,)
    direction = norm.weight.double().cpu() * w / scale  # (d,)

    def share(vector: torch.Tensor) -> float:
        vector = vector.double()
        return float((vector - vector.mean(-1, keepdim=True) if layer_norm else vector) @ direction)

    parts = {"embed": share(tr.embed()[-1])}
    if "hook_pos_embed" in tr:
        parts["pos_embed"] = share(tr["hook_pos_embed"][-1])
    heads = torch.zeros(cfg.n_layers, cfg.n_heads, dtype=torch.float64)
    bias = torch.zeros(cfg.n_layers, dtype=torch.float64)
    hs = cfg.head_dim
    for i, block in enumerate(model.blocks):
        parts[f"blocks.{i}.attn"] = share(tr.attn_out(i)[-1])
        W_O = block.attn.out.weight.double().cpu()  # (d, nh·hs)
        z = tr.z(i)[-1].double()  # (nh, hs)
        per_head = torch.stack([W_O[:, h * hs:(h + 1) * hs] @ z[h] for h in range(cfg.n_heads)])  # (nh, d)
        heads[i] = torch.tensor([share(v) for v in per_head])
        if block.attn.out.bias is not None:
            bias[i] = share(block.attn.out.bias.detach().cpu())
        parts[f"blocks.{i}.mlp"] = share(tr.mlp_out(i)[-1])
    if getattr(norm, "bias", None) is not None:
        parts["ln_final.bias"] = float(norm.bias.double().cpu() @ w)
    logit = float(tr.logits[token_id]) if tr.logits is not None else float("nan")
    return Attribution(parts, heads, bias, logit, scale, token_id)


@dataclass(frozen=True)
class NormSteps:
    """One token's vector through a LayerNorm or RMSNorm, step by step (all (d,) except the scalars).

    LayerNorm: normalized = (before - mean) / √(var + ε); RMSNorm: normalized = before / √(mean(before²) + ε).
    Then scaled = normalized × gain, and after = scaled + bias (RMSNorm and bias-free norms: after = scaled).
    """

    kind: str  # "LayerNorm" or "RMSNorm"
    before: torch.Tensor
    mean: float | None  # None for RMSNorm, which does not centre
    spread: float  # the divisor: √(var + ε) or √(mean(x²) + ε)
    eps: float
    normalized: torch.Tensor
    gain: torch.Tensor
    scaled: torch.Tensor
    bias: torch.Tensor | None
    after: torch.Tensor


def norm_names(cfg) -> list[str]:
    """The model's norms in the order the forward pass meets them: "ln_embed" (post-norm), "blocks.{i}.ln1",
    "blocks.{i}.ln2", "ln_final" (pre-norm)."""
    names = ["ln_embed"] if cfg.post_norm else []
    for i in range(cfg.n_layers):
        names += [f"blocks.{i}.ln1", f"blocks.{i}.ln2"]
    return names + ([] if cfg.post_norm else ["ln_final"])


def norm_of(cfg, layer: int | None = None, second: bool = False) -> str:
    """The name of a norm: block `layer`'s first (or second) norm, or with no layer the model's last norm."""
    return norm_names(cfg)[-1] if layer is None else f"blocks.{layer}.{'ln2' if second else 'ln1'}"


def norm_label(cfg, name: str) -> str:
    """A norm's name in words, with where it sits in this model's block."""
    if name in ("ln_final", "ln_embed"):
        return {"ln_final": "final norm (before the unembedding)", "ln_embed": "embedding norm"}[name]
    _, layer, which = name.split(".")
    if cfg.post_norm:
        return f"layer {layer}, after {'attention' if which == 'ln1' else 'the feed-forward'} (and its add)"
    return f"layer {layer}, before {'attention' if which == 'ln1' else 'the feed-forward'}"


def _norm_input(tr: Trace, cfg, where: str) -> torch.Tensor:
    """(T, d) what the norm `where` receives, from recorded tensors."""
    if where == "ln_embed":
        parts = [tr[n] for n in ("hook_embed", "hook_pos_embed", "hook_token_type_embed") if n in tr]
        return sum(parts)
    if where == "ln_final":
        return tr.resid_post(cfg.n_layers - 1)
    layer, which = int(where.split(".")[1]), where.split(".")[2]
    if cfg.post_norm:  # the add comes first, then the norm
        return tr.resid_pre(layer) + tr.attn_out(layer) if which == "ln1" else tr.resid_mid(layer) + tr.mlp_out(layer)
    return tr.resid_pre(layer) if which == "ln1" else tr.resid_mid(layer)


NORM_RECORD = ("hook_embed", "hook_pos_embed", "hook_token_type_embed", "blocks.*.hook_resid_pre",
               "blocks.*.hook_resid_mid", "blocks.*.hook_resid_post", "blocks.*.hook_attn_out", "blocks.*.hook_mlp_out")


def norm_steps(model: Transformer, tr: Trace, where: str, position: int) -> NormSteps:
    """The norm `where` (one of norm_names) applied to the token at `position`, step by step, with the model's own
    gain, bias and ε. `after` equals what the model computed there."""
    cfg = model.config
    if where not in norm_names(cfg):
        raise ValueError(f"{where!r} is not a norm of {cfg.name}: {norm_names(cfg)[:4]} …")
    tr = grow(model, tr, NORM_RECORD)
    if not -tr.n_tokens <= position < tr.n_tokens:
        raise ValueError(f"position {position} not in 0..{tr.n_tokens - 1}")
    norm = model.get_submodule(where)
    x = _norm_input(tr, cfg, where)[position].double()
    gain = norm.weight.detach().double().cpu()
    bias = norm.bias.detach().double().cpu() if getattr(norm, "bias", None) is not None else None
    if isinstance(norm, torch.nn.LayerNorm):
        kind, mean, eps = "LayerNorm", float(x.mean()), norm.eps
        spread = math.sqrt(float(x.var(unbiased=False)) + eps)
        normalized = (x - mean) / spread
    else:
        kind, mean, eps = "RMSNorm", None, norm.eps or float(torch.finfo(torch.float32).eps)
        spread = math.sqrt(float(x.pow(2).mean()) + eps)
        normalized = x / spread
    scaled = normalized * gain
    after = scaled + bias if bias is not None else scaled
    return NormSteps(kind, x.float(), mean, spread, eps, normalized.float(), gain.float(), scaled.float(),
                     None if bias is None else bias.float(), after.float())


SUMMARY_RECORD = ("hook_embed", "hook_pos_embed", "hook_token_type_embed", "ln_embed.hook_normalized",
                  "blocks.*.hook_resid_mid", "blocks.*.hook_resid_post", "blocks.*.hook_attn_out",
                  "blocks.*.hook_mlp_out", "ln_final.hook_normalized")


@dataclass(frozen=True)
class ForwardSummary:
    """One forward pass, stage by stage, for the last `len(tokens)` tokens of the input.

    Stages: "embed" (the vector entering block 0: token embedding, plus positions and segment where the model adds
    them, normalised for a post-norm model), then "blocks.{i}.attn" and "blocks.{i}.mlp" (the residual stream after
    each half of block i) and, for a pre-norm model, "ln_final". resid_norm (S, T): the vector's length after each
    stage; added_norm (S, T): the length of what the stage added (NaN where it adds nothing). lens_ids / lens_probs
    (S, T, k): the tokens the final norm and unembedding would predict from that stage's residual stream (the logit
    lens; None for an encoder, or when not asked for: `stage_lens` gives it for one token, at 1/T of the cost — on
    SmolLM2 each stage and token is a 576 × 49,152 product); at the last block's MLP it is the model's real
    prediction. stream (S, T, d): the residual stream itself after each stage, what the lens reads.
    """

    stages: list[str]
    tokens: list[str]
    token_ids: list[int]
    n_tokens: int  # of the whole input (tokens holds only the last few)
    resid_norm: torch.Tensor
    added_norm: torch.Tensor
    lens_ids: torch.Tensor | None
    lens_probs: torch.Tensor | None
    embed_norm: torch.Tensor  # (T,) the token embedding rows alone
    pos_norm: torch.Tensor | None  # (T,) the position vectors alone (None for RoPE)
    stream: torch.Tensor  # (S, T, d)

    def index(self, layer: int, part: str) -> int:
        """The stage after block `layer`'s attention ("attn") or feed-forward ("mlp") half."""
        return 1 + 2 * layer + (part == "mlp")

    @property
    def has_final_norm(self) -> bool:
        return self.stages[-1] == "ln_final"

    @property
    def labels(self) -> list[str]:
        """Short stage names for an axis: "embedding", "0·attn", "0·ffn", …, "final norm"."""
        return ["embedding"] + [f"{s.split('.')[1]}·{'attn' if s.endswith('attn') else 'ffn'}"
                                for s in self.stages[1:] if s.startswith("blocks.")] + \
            (["final norm"] if self.has_final_norm else [])


def forward_summary(model: Transformer, tr: Trace, window: int = 24, lens_k: int = 3) -> ForwardSummary:
    """Summarise every stage of a trace for the last `window` tokens (see ForwardSummary), growing what it lacks
    (core.trace.grow). Only norms and the top-k lens are kept, so the summary is small whatever the model."""
    cfg = model.config
    tr = grow(model, tr, SUMMARY_RECORD)
    keep = slice(max(0, tr.n_tokens - window), tr.n_tokens)
    entry = tr["ln_embed.hook_normalized"] if cfg.post_norm else sum(
        tr[n] for n in ("hook_embed", "hook_pos_embed", "hook_token_type_embed") if n in tr)
    stages, resid, added = ["embed"], [entry[keep]], [None]
    for i in range(cfg.n_layers):
        stages += [f"blocks.{i}.attn", f"blocks.{i}.mlp"]
        resid += [tr.resid_mid(i)[keep], tr.resid_post(i)[keep]]
        added += [tr.attn_out(i)[keep], tr.mlp_out(i)[keep]]
    if not cfg.post_norm:
        stages.append("ln_final")
        resid.append(tr["ln_final.hook_normalized"][keep])
        added.append(None)
    T = len(resid[0])
    stream = torch.stack([r.float() for r in resid])
    lens_ids, lens_probs = _stage_tops(model, stages, stream, lens_k) if cfg.lm_head and lens_k else (None, None)
    nan = torch.full((T,), float("nan"))
    return ForwardSummary(
        stages=stages, tokens=tr.tokens[keep], token_ids=tr.token_ids[keep], n_tokens=tr.n_tokens,
        resid_norm=torch.stack([r.float().norm(dim=-1) for r in resid]),
        added_norm=torch.stack([nan if a is None else a.float().norm(dim=-1) for a in added]),
        lens_ids=lens_ids, lens_probs=lens_probs, embed_norm=tr.embed()[keep].norm(dim=-1),
        pos_norm=tr["hook_pos_embed"][keep].norm(dim=-1) if "hook_pos_embed" in tr else None, stream=stream,
    )


def _stage_tops(model: Transformer, stages: list[str], stream: torch.Tensor, k: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit lens's top-k ids and probabilities, (S, T, k), of a stream (S, T, d) stage by stage (the stage after
    the final norm is already normalised)."""
    return lens_tops(model, stream, k, normed=[name == "ln_final" for name in stages])


def stage_lens(model: Transformer, summary: ForwardSummary, pos: int, k: int = 3
               ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The logit lens for ONE token of the summary (`pos` in its window): top-k ids and probabilities after every
    stage, (S, k) each, equal to forward_summary(…, lens_k=k)'s [:, pos]; None for a model without an LM head."""
    if not model.config.lm_head:
        return None
    ids, probs = _stage_tops(model, summary.stages, summary.stream[:, pos : pos + 1], k)
    return ids[:, 0], probs[:, 0]


def activation(cfg, x: torch.Tensor) -> torch.Tensor:
    """The MLP's activation function applied to x: GELU (GPT-2's tanh form or BERT's exact erf form), or SiLU, the
    function SwiGLU applies to its gate before multiplying by the up branch."""
    if cfg.mlp == "swiglu":
        return F.silu(x)
    return F.gelu(x, approximate="tanh" if cfg.mlp == "gelu" else "none")


def activation_name(cfg) -> str:
    return {"gelu": "GELU (tanh approximation)", "gelu_exact": "GELU (exact, erf)", "swiglu": "SiLU (SwiGLU's gate)"
            }[cfg.mlp]


def top_neurons(tr: Trace, layer: int, k: int = 20) -> list[int]:
    """The k hidden units of one MLP with the largest |activation| anywhere in the text after its first token,
    largest first. The first token is left out (when there are others): with nothing before it, many models give
    it outsized activations that would crowd out every unit that reads the text."""
    post = tr.mlp_post(layer)
    post = (post[1:] if len(post) > 1 else post).abs().amax(dim=0)  # (m,)
    return post.topk(min(k, post.numel())).indices.tolist()


def firing(tr: Trace, layer: int) -> torch.Tensor:
    """(T,) share of one MLP's hidden units whose pre-activation (SwiGLU: gate) is positive at each token: the units
    the activation passes on (GELU and SiLU let positive inputs through almost unchanged and squash negative ones
    towards zero)."""
    return (tr.mlp_pre(layer) > 0).float().mean(dim=-1)


def neuron_logit_effect(model: Transformer, layer: int, neuron: int, k: int = 10
                        ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """The vocabulary tokens one MLP unit's output direction promotes and suppresses most, directly: its column of
    the down-projection, through the final norm's gain (centred for LayerNorm), times the unembedding. Per unit of
    activation, before the final norm's per-token division, and ignoring every later layer."""
    _decoder_with_final_norm(model, "direct effect on the logits")
    cfg = model.config
    if not 0 <= layer < cfg.n_layers or not 0 <= neuron < cfg.mlp_dim:
        raise ValueError(f"no unit {neuron} in layer {layer}")
    with torch.inference_mode():
        w = model.blocks[layer].mlp.fc_out.weight[:, neuron].float()  # (d,)
        if isinstance(model.ln_final, torch.nn.LayerNorm):
            w = w - w.mean()
        effect = model.unembed_logits((w * model.ln_final.weight.float()).to(model.embed.weight.dtype)).float().cpu()
    up, down = effect.topk(k), (-effect).topk(k)
    return ([(int(i), float(v)) for i, v in zip(up.indices, up.values)],
            [(int(i), -float(v)) for i, v in zip(down.indices, down.values)])


EXAMPLE_SENTENCES = Path(__file__).resolve().parent.parent / "assets" / "texts" / "neuron_sentences.txt"


def example_sentences() -> list[str]:
    """The sentences the project ships for neuron examples (written for Glassbox; see assets/texts/NOTICE.md)."""
    check_asset(EXAMPLE_SENTENCES)
    return [line for line in EXAMPLE_SENTENCES.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass(frozen=True)
class NeuronExamples:
    """Every MLP layer's activations over a set of sentences (each traced on its own): acts (layers, N, m) float16
    for all N tokens, with the sentence and position each row comes from."""

    sentences: list[list[str]]  # display tokens of each sentence
    sentence_of: torch.Tensor  # (N,)
    position_of: torch.Tensor  # (N,)
    acts: torch.Tensor  # (layers, N, m)

    def top(self, layer: int, neuron: int, k: int = 8) -> list[tuple[int, int, float]]:
        """(sentence, position, activation) of the k largest activations of one unit by size (a SwiGLU unit's sign
        is the up branch's, so either sign is strong), largest first; first tokens left out (see top_neurons)."""
        column = self.acts[layer, :, neuron].float().masked_fill(self.position_of == 0, 0.0)
        best = column.abs().topk(min(k, len(column))).indices
        return [(int(self.sentence_of[i]), int(self.position_of[i]), float(column[i])) for i in best]


def neuron_examples(model: Transformer, sentences: list[str] | list[list[int]]) -> NeuronExamples:
    """Every unit of every MLP layer on every sentence (see NeuronExamples)."""
    tokens, rows, sent, pos = [], [], [], []
    for s, text in enumerate(sentences):
        tr = trace(model, text, record=("blocks.*.mlp.hook_post",), logits="none")
        tokens.append(tr.tokens)
        rows.append(torch.stack([tr.mlp_post(i).half() for i in range(model.config.n_layers)]))  # (L, T, m)
        sent += [s] * tr.n_tokens
        pos += list(range(tr.n_tokens))
    return NeuronExamples(tokens, torch.tensor(sent), torch.tensor(pos), torch.cat(rows, dim=1))


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
