"""The weight matrices as pictures: any block's W_Q, W_K, W_V, W_O, W_in (and SwiGLU's W_gate), W_out, and a window
of the embedding table, written the way they multiply a row vector (x @ W: rows are inputs, columns outputs), with
the heads' boundaries, pooled to a drawable size — each cell the mean of a block of entries, the true shape kept."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.model import Transformer

CELLS = 192  # the most rows or columns drawn; a bigger side is pooled to this
EMBED_WINDOW = 48  # embedding rows shown around the followed token


@dataclass(frozen=True)
class Matrix:
    name: str  # "W_Q"
    shape: tuple[int, int]  # the true (rows, columns)
    values: torch.Tensor  # (r, c) pooled: each cell the mean of about row_step × col_step entries
    row_step: float
    col_step: float
    rows: str  # what a row is
    cols: str  # what a column is
    col_group: int  # a head's width in true columns (0: not split by heads)
    row_group: int  # the same for rows (W_O's inputs are the heads' outputs)
    first_row: int = 0  # the embedding window's first token id
    marked_row: int | None = None  # the followed token's row (embedding), in true row numbers


def matrix_names(model: Transformer) -> list[str]:
    return ["W_Q", "W_K", "W_V", "W_O"] + (["W_gate"] if model.config.mlp == "swiglu" else []) + ["W_in", "W_out",
                                                                                                    "embedding"]


def weight_matrix(model: Transformer, layer: int, name: str, token_id: int = 0) -> Matrix:
    """One weight matrix of block `layer` (the embedding: a window of rows around `token_id`), the model's own
    numbers, in x @ W orientation."""
    cfg = model.config
    if not 0 <= layer < cfg.n_layers:
        raise ValueError(f"block {layer} is not in this model (0–{cfg.n_layers - 1})")
    if name not in matrix_names(model):
        raise ValueError(f"{name!r} is not one of {matrix_names(model)}")
    if name == "embedding":
        return _embedding_window(model, token_id)
    block, d, hs = model.blocks[layer], cfg.d_model, cfg.head_dim
    q, k, v = block.attn.qkv.weight.split(block.attn.split, dim=0)  # each (out, d)
    mlp = block.mlp
    table = {  # name → (W as x @ W, what rows are, what columns are, head width in columns, in rows)
        "W_Q": (q.T, f"input (d = {d})", f"{cfg.n_heads} heads × {hs}", hs, 0),
        "W_K": (k.T, f"input (d = {d})", f"{cfg.kv_heads} key heads × {hs}", hs, 0),
        "W_V": (v.T, f"input (d = {d})", f"{cfg.kv_heads} value heads × {hs}", hs, 0),
        "W_O": (block.attn.out.weight.T, f"{cfg.n_heads} heads × {hs}", f"output (d = {d})", 0, hs),
        "W_in": (mlp.fc_in.weight.T, f"input (d = {d})", f"hidden units (m = {cfg.mlp_dim:,})", 0, 0),
        "W_out": (mlp.fc_out.weight.T, f"hidden units (m = {cfg.mlp_dim:,})", f"output (d = {d})", 0, 0),
    }
    if cfg.mlp == "swiglu":
        table["W_gate"] = (mlp.fc_gate.weight.T, f"input (d = {d})", f"gate units (m = {cfg.mlp_dim:,})", 0, 0)
    w, rows, cols, col_group, row_group = table[name]
    values, row_step, col_step = pooled(w)
    return Matrix(name, tuple(w.shape), values, row_step, col_step, rows, cols, col_group, row_group)


def pooled(w: torch.Tensor, cells: int = CELLS) -> tuple[torch.Tensor, float, float]:
    """(R, C) → at most (cells, cells): each cell the mean of its block of entries, and the entries per cell."""
    R, C = w.shape
    r, c = min(R, cells), min(C, cells)
    out = F.adaptive_avg_pool2d(w.detach().float().cpu()[None, None], (r, c))[0, 0]
    return out, R / r, C / c


def _embedding_window(model: Transformer, token_id: int) -> Matrix:
    table = model.embed.weight  # (V, d)
    V, d = table.shape
    if not 0 <= token_id < V:
        raise ValueError(f"token id {token_id} is not in the vocabulary (0–{V - 1})")
    first = max(0, min(token_id - EMBED_WINDOW // 2, V - EMBED_WINDOW))
    window = table[first : first + EMBED_WINDOW]
    values, row_step, col_step = pooled(window)
    return Matrix("embedding", (V, d), values, row_step, col_step, f"token ids {first}–{first + len(window) - 1} "
                  f"of {V:,}", f"vector (d = {d})", 0, 0, first_row=first, marked_row=token_id)
