"""The embedding table and the residual stream as geometry: PCA, cosine neighbours, analogies, a word in two
contexts, layer by layer."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from core.model import Transformer
from core.trace import Trace


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



def cosine_matrix(rows: torch.Tensor) -> torch.Tensor:
    """(n, n) cosine similarity between every pair of rows."""
    normed = torch.nn.functional.normalize(rows.float(), dim=-1)
    return normed @ normed.T



def mean_norm_ratio(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean row length of `a` over mean row length of `b` (how much training grew a table)."""
    return float(a.norm(dim=-1).mean() / b.norm(dim=-1).mean())
