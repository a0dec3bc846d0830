"""The one instrumented transformer every page reads from.

A single nn.Module covers GPT-2 (learned positions, LayerNorm, GELU), Llama (RoPE, RMSNorm, SwiGLU, grouped-query
attention), BERT-style encoders (bidirectional attention, post-LayerNorm, token types, no LM head) and the original
paper's sinusoidal positions. Module paths use TransformerLens names
(`embed, pos_embed, blocks[i].{ln1, attn, ln2, mlp}, ln_final, unembed`), and every intermediate can be recorded
under a dotted TransformerLens hook name. A call may also EDIT any of those tensors (an `Edit`: zero it, add to it,
or replace it at chosen positions) where the model computes it, before it is recorded and read on: switching parts off
(an `Ablation`), activation patching and steering are all edits (core.interventions builds them).

Recording and editing belong to ONE forward call: the caller passes a `Recorder` (which carries the call's edits), the
model writes into it and keeps nothing.
A cached model can therefore serve many browser sessions on many threads at once. With no recorder (or one that
does not ask for attention internals) attention takes the fast `F.scaled_dot_product_attention` path; when the
scores or the pattern are wanted it takes the explicit softmax(q·kᵀ/√d + mask)·v path (for a causal model,
ATTN_BLOCK query rows at a time, which skips the masked half of the scores). Both give the same output.

Recorded names (B = batch, T = query positions, S = key positions incl. cached ones, nh = heads, nkv = key/value
heads, hs = head size, d = d_model, m = MLP width). Trace strips the batch dimension.

| name                              | shape            | what                                              |
|-----------------------------------|------------------|---------------------------------------------------|
| hook_embed                        | (B, T, d)        | token embedding rows                              |
| hook_pos_embed                    | (B, T, d)        | learned or sinusoidal position vectors (not RoPE) |
| hook_token_type_embed             | (B, T, d)        | BERT only: segment vectors (all sentence A here)  |
| ln_embed.hook_normalized          | (B, T, d)        | BERT only: the embeddings' LayerNorm              |
| blocks.{i}.hook_resid_pre         | (B, T, d)        | residual stream entering block i                  |
| blocks.{i}.ln1.hook_normalized    | (B, T, d)        | first norm's output                               |
| blocks.{i}.attn.hook_q            | (B, T, nh, hs)   | queries (after RoPE where used)                   |
| blocks.{i}.attn.hook_k            | (B, S, nkv, hs)  | keys (after RoPE where used)                      |
| blocks.{i}.attn.hook_v            | (B, S, nkv, hs)  | values                                            |
| blocks.{i}.attn.hook_attn_scores  | (B, nh, T, S)    | q·kᵀ/√hs with the mask applied (-inf), pre-softmax |
| blocks.{i}.attn.hook_pattern      | (B, nh, T, S)    | attention weights after softmax                   |
| blocks.{i}.attn.hook_z            | (B, T, nh, hs)   | per-head weighted sum of values                   |
| blocks.{i}.hook_attn_out          | (B, T, d)        | attention output after the output projection      |
| blocks.{i}.hook_resid_mid         | (B, T, d)        | residual after attention (post-LN: after ln1)     |
| blocks.{i}.ln2.hook_normalized    | (B, T, d)        | second norm's output                              |
| blocks.{i}.mlp.hook_pre           | (B, T, m)        | MLP pre-activation (SwiGLU: the gate)             |
| blocks.{i}.mlp.hook_pre_linear    | (B, T, m)        | SwiGLU only: the linear ("up") branch             |
| blocks.{i}.mlp.hook_post          | (B, T, m)        | MLP activation                                    |
| blocks.{i}.hook_mlp_out           | (B, T, d)        | MLP output                                        |
| blocks.{i}.hook_resid_post        | (B, T, d)        | residual leaving block i                          |
| ln_final.hook_normalized          | (B, T, d)        | final norm's output (pre-LN models only)          |

Every name above is editable except hook_attn_scores and hook_pattern, which exist on the explicit path only.

Pre-LN (GPT-2, Llama): x + attn(ln1(x)), then x + mlp(ln2(x)), then ln_final. Post-LN (BERT): ln1(x + attn(x)),
then ln2(x + mlp(x)); ln1/ln2.hook_normalized then equal resid_mid/resid_post.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.config import ModelConfig

KVCache = list[tuple[torch.Tensor, torch.Tensor]]
ATTN_BLOCK = 128  # query rows per block of the explicit causal attention (Attention.causal_blocks)

# What a trace keeps when nothing else is asked for: the embedding stage (which core.trace.grow cannot redo) and the
# residual stream around every block (block i's resid_pre is block i-1's resid_post, so only the first is kept).
# Everything inside a block — attention patterns included — is computed from that stream when a view asks for it
# (core.trace.grow, core.trace.layer_pattern): a pattern is heads × T² numbers per layer (186 MB for SmolLM2 at 768
# tokens, all layers), and materialising it makes attention take the explicit path instead of the fused one.
DEFAULT_RECORD = (
    "hook_embed",
    "hook_pos_embed",
    "hook_token_type_embed",  # BERT only, like the next
    "ln_embed.hook_normalized",
    "blocks.0.hook_resid_pre",
    "blocks.*.hook_resid_post",
)
PATTERN_RECORD = "blocks.*.attn.hook_pattern"  # every layer's attention weights, when a caller wants them all at once


NOT_EDITABLE = ("hook_attn_scores", "hook_pattern")  # computed on the explicit attention path only


@dataclass(frozen=True, eq=False)
class Edit:
    """One change to one named tensor in ONE forward call, made where the model computes that tensor — before it is
    recorded and before the model reads it on (nnsight: any module output is editable inside one trace). Switching a
    part off, patching and steering are all Edits; the shared model is never touched.

    op: "zero" (set to 0), "add" (add `value`) or "set" (replace by `value`); `value` broadcasts against the tensor
    (B, T, …) — a (d,) steering vector, or a (1, T, d) stream from another run.
    where: bool (B or 1, T), True at the (batch row, position) pairs edited; None: every position. A batch row of its
    own per patched position is how core.interventions.patch_sweep runs a whole sweep in a few forward passes.
    heads: for per-head tensors (B, T, heads, hs), the heads edited; None: all.
    """

    name: str
    op: str
    value: torch.Tensor | None = None
    where: torch.Tensor | None = None
    heads: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.op not in ("zero", "add", "set"):
            raise ValueError(f'an edit\'s op is "zero", "add" or "set", not {self.op!r}')
        if (self.value is None) != (self.op == "zero"):
            raise ValueError(f"edit {self.name}: {self.op!r} " + ("takes no value" if self.op == "zero" else "needs a value"))
        if self.name.rsplit(".", 1)[-1] in NOT_EDITABLE:
            raise ValueError(f"{self.name} cannot be edited: attention scores and patterns exist only when recorded; "
                             "edit the head's output (attn.hook_z) instead")
        if self.where is not None and (self.where.dtype != torch.bool or self.where.dim() != 2):
            raise ValueError(f"edit {self.name}: `where` is a bool (batch, positions) mask, not {tuple(self.where.shape)}")

    def mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """Where this edit applies, broadcastable against x (B, T, …); None: everywhere."""
        if self.where is None and self.heads is None:
            return None
        mask = torch.ones((1,) * x.dim(), dtype=torch.bool, device=x.device)
        if self.where is not None:
            if self.where.shape[1] != x.shape[1] or self.where.shape[0] not in (1, x.shape[0]):
                raise ValueError(f"edit {self.name}: positions mask {tuple(self.where.shape)} does not fit the tensor "
                                 f"{tuple(x.shape)}")
            mask = mask & self.where.to(x.device).view(*self.where.shape, *(1,) * (x.dim() - 2))  # (B|1, T, 1…)
        if self.heads is not None:
            if x.dim() != 4:
                raise ValueError(f"edit {self.name}: heads can be chosen in per-head tensors only, not {tuple(x.shape)}")
            chosen = torch.zeros(x.shape[2], dtype=torch.bool, device=x.device)
            chosen[list(self.heads)] = True
            mask = mask & chosen.view(1, 1, -1, 1)  # (…, nh, 1)
        return mask

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """x edited, as a new tensor (x itself is left as it was)."""
        mask = self.mask(x)
        if self.op == "zero":
            return torch.zeros_like(x) if mask is None else x.masked_fill(mask, 0.0)
        value = self.value.to(x.device, x.dtype)
        try:
            new = x + value if self.op == "add" else value.expand_as(x)
        except RuntimeError:
            raise ValueError(f"edit {self.name}: a value of shape {tuple(value.shape)} does not fit the tensor "
                             f"{tuple(x.shape)}") from None
        return new.clone() if mask is None and self.op == "set" else new if mask is None else torch.where(mask, new, x)


@dataclass(frozen=True)
class Ablation:
    """Parts switched off for ONE forward call (the shared model is never touched): attention heads, whose weighted
    sum of values z is set to zero before the output projection, and whole MLP layers, whose output is set to zero.
    Zero-ablation, as in TransformerLens's head-ablation tutorial; the residual connection still carries the rest.
    It is carried out as Edits (`edits()`), like every other intervention."""

    heads: frozenset[tuple[int, int]] = frozenset()  # (layer, head)
    mlps: frozenset[int] = frozenset()  # layer

    @classmethod
    def parse(cls, spec: dict | None, cfg: ModelConfig) -> Ablation | None:
        """{"heads": [(layer, head), …], "mlps": [layer, …]} → an Ablation (None when nothing is switched off);
        anything else, or a layer or head the model does not have, raises ValueError."""
        if not spec:
            return None
        if not isinstance(spec, dict) or set(spec) - {"heads", "mlps"}:
            raise ValueError('ablate takes a dict with the keys "heads" (a list of (layer, head)) and "mlps" (a list '
                             f"of layers), not {spec!r}")
        try:
            heads = frozenset((int(layer), int(head)) for layer, head in spec.get("heads", ()))
            mlps = frozenset(int(layer) for layer in spec.get("mlps", ()))
        except (TypeError, ValueError):
            raise ValueError(f"ablate: heads are (layer, head) pairs and mlps are layers, not {spec!r}") from None
        bad = [h for h in heads if not (0 <= h[0] < cfg.n_layers and 0 <= h[1] < cfg.n_heads)]
        bad += [m for m in mlps if not 0 <= m < cfg.n_layers]
        if bad:
            raise ValueError(f"ablate: {bad} not in this model ({cfg.n_layers} layers × {cfg.n_heads} heads)")
        return cls(heads, mlps) if heads or mlps else None

    def heads_in(self, layer: int) -> list[int]:
        return sorted(h for lay, h in self.heads if lay == layer)

    def edits(self) -> list[Edit]:
        """The same switch-off as Edits: each layer's chosen heads of hook_z, and hook_mlp_out, set to zero."""
        layers = sorted({layer for layer, _ in self.heads})
        return [Edit(f"blocks.{layer}.attn.hook_z", "zero", heads=tuple(self.heads_in(layer))) for layer in layers] + \
               [Edit(f"blocks.{layer}.hook_mlp_out", "zero") for layer in sorted(self.mlps)]


@lru_cache(maxsize=256)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], object]:
    """fnmatchcase against any of `patterns`, as one compiled regex (built once per pattern set: a trace of a
    1-ms model spent a tenth of its time translating patterns)."""
    if not patterns:
        return lambda name: None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


class Recorder:
    """Collects the tensors one forward call was asked to record (by exact name or fnmatch pattern), and carries the
    call's Edits (an Ablation becomes edits too): the model reads both from the call, never from itself. Every named
    tensor passes through the recorder (`x = rec(name, x)`), which edits it, keeps it if asked, and hands it back.

    compact_patterns: keep a causal model's attention patterns as float16 in `packed`, (B, nh, blocked_size(T)),
    instead of (B, nh, T, T) float32 in `store`: for each ATTN_BLOCK query rows a .. b - 1, only keys 0 .. b - 1
    (the later keys are masked, so zero), one rectangle after another — the lower triangle plus the diagonal
    blocks' upper halves (12% more than the triangle itself at T = 1,024, 1.6% at 8,192; up to half more just past
    COMPACT_FROM, where the patterns are small). Each block is
    copied as attention computes it, in one contiguous copy: no full pattern is ever held, and no gather (the
    triangle's gather had cost more than the attention itself).
    """

    def __init__(self, names: str | Iterable[str] = DEFAULT_RECORD, compact_patterns: bool = False,
                 ablation: Ablation | None = None, edits: Iterable[Edit] = ()):
        self.edits: dict[str, list[Edit]] = {}
        for edit in [*(ablation.edits() if ablation is not None else ()), *edits]:
            self.edits.setdefault(edit.name, []).append(edit)
        self.applied: set[str] = set()  # names of the edits carried out so far
        self.patterns = (names,) if isinstance(names, str) else tuple(names)
        self._match = _matcher(self.patterns)
        self.store: dict[str, torch.Tensor] = {}
        self.packed: dict[str, torch.Tensor] = {}
        self.compact_patterns = compact_patterns
        self._decided: dict[str, bool] = {}

    def wants(self, name: str) -> bool:
        hit = self._decided.get(name)
        if hit is None:
            hit = self._match(name) is not None  # fnmatchcase over every pattern, as one regex
            self._decided[name] = hit
        return hit

    def __call__(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """The tensor named `name`, edited if this call edits it (a new tensor), recorded if asked for."""
        edits = self.edits.get(name)
        if edits:
            for edit in edits:
                tensor = edit.apply(tensor)
            self.applied.add(name)
        if self.wants(name):
            self.store[name] = tensor.detach()
        return tensor

    def check_applied(self) -> None:
        """ValueError for an edit whose tensor the forward pass never computed (a name the model does not have)."""
        missed = sorted(set(self.edits) - self.applied)
        if missed:
            raise ValueError(f"no tensor named {missed} in this model's forward pass: nothing was edited there (see "
                             "the names in core.model)")

    def pattern_rows(self, name: str, row: int, block: torch.Tensor, n_rows: int) -> None:
        """Query rows row .. row + n of a causal pattern with n_rows rows: block (B, nh, n, row + n), keys
        0 .. row + n - 1 (the later keys are masked, so zero)."""
        if not self.wants(name):
            return
        B, nh, n, S = block.shape
        if self.compact_patterns:
            out = self.packed.get(name)
            if out is None:
                out = self.packed[name] = block.new_empty(B, nh, blocked_size(n_rows), dtype=torch.float16)
            for a in range(row, row + n, ATTN_BLOCK):  # row is a block start; one rectangle per block
                b = min(row + n, a + ATTN_BLOCK)
                out[:, :, blocked_size(a) : blocked_size(b)].view(B, nh, b - a, b).copy_(block[:, :, a - row : b - row, :b])
        elif n == n_rows:
            self.store[name] = block.detach()
        else:
            out = self.store.get(name)
            if out is None:
                out = self.store[name] = block.new_zeros(B, nh, n_rows, n_rows)
            out[:, :, row : row + n, :S] = block


def blocked_size(n: int) -> int:
    """Entries of the first n query rows of a compact pattern (see Recorder): rows a .. b - 1 of each ATTN_BLOCK
    keep keys 0 .. b - 1. n is a block boundary or the pattern's last row."""
    full, rest = divmod(n, ATTN_BLOCK)
    return ATTN_BLOCK * ATTN_BLOCK * full * (full + 1) // 2 + rest * n


CACHED_MASK_CELLS = 1 << 20  # masks up to 1 MB are cached; a whole-text mask (8,192² = 67 MB) is built each time


def attention_mask(cfg: ModelConfig, start: int, n_keys: int, device: torch.device | None = None) -> torch.Tensor | None:
    """`cfg.hidden_keys` (True = hidden) on `device`: the same few small masks serve every layer and call (cached, at
    most 64 MB in all); a big one is built when asked, so long texts do not fill the process with masks."""
    if (n_keys - start) * n_keys <= CACHED_MASK_CELLS:
        return _cached_mask(cfg, start, n_keys, device)
    hidden = cfg.hidden_keys(start, n_keys)
    return None if hidden is None else hidden.to(device)


@lru_cache(maxsize=64)
def _cached_mask(cfg: ModelConfig, start: int, n_keys: int, device: torch.device | None) -> torch.Tensor | None:
    hidden = cfg.hidden_keys(start, n_keys)
    return None if hidden is None else hidden.to(device)


def sdpa_mask(cfg: ModelConfig, start: int, n_keys: int, device: torch.device) -> tuple[torch.Tensor | None, bool]:
    """`attention_mask` as F.scaled_dot_product_attention takes it fastest: (attn_mask of visible keys, is_causal)."""
    hidden = attention_mask(cfg, start, n_keys, device)
    if hidden is None or (n_keys - start == 1 and not hidden.any()):
        return None, False
    if cfg.plain_causal and start == 0:  # SDPA's fused kernel builds the causal triangle itself
        return None, True
    return ~hidden, False


def _rec(rec: Recorder | None, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The tensor as the call's recorder hands it back (edited if the call edits it); itself without a recorder."""
    return tensor if rec is None else rec(name, tensor)


def sinusoidal_table(n_positions: int, d_model: int) -> torch.Tensor:
    """The original paper's PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(same)."""
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (n, 1)
    inv = torch.pow(10000.0, -torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)  # (d/2,)
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(pos * inv)
    table[:, 1::2] = torch.cos(pos * inv)[:, : d_model // 2]
    return table


def rope_inv_freq(cfg: ModelConfig) -> torch.Tensor:
    """Rotation frequency of each (x_j, x_{j+hs/2}) dimension pair, radians per position: theta^(-2j/hs)."""
    hs = cfg.head_dim
    return 1.0 / (cfg.rope_theta ** (torch.arange(0, hs, 2, dtype=torch.float32) / hs))  # (hs/2,)


def rope_distance_profile(cfg: ModelConfig, max_distance: int) -> torch.Tensor:
    """(max_distance,): q·k after RoPE for q = k = all ones, divided by hs, at each relative distance Δ:
    the mean over pairs of cos(Δ·θ_j). It depends on Δ only, which is what makes RoPE relative."""
    distance = torch.arange(max_distance, dtype=torch.float32)
    return torch.cos(torch.outer(distance, rope_inv_freq(cfg))).mean(dim=1)


class SinusoidalPositions(nn.Module):
    """Fixed, not learned: the table is a buffer, absent from the state dict."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(cfg.n_ctx, cfg.d_model), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table[positions]


class Rotary(nn.Module):
    """RoPE as Llama does it (rotate_half convention): q and k are rotated by an angle proportional to position."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        angles = torch.outer(torch.arange(cfg.n_ctx, dtype=torch.float32), rope_inv_freq(cfg))  # (n_ctx, hs/2)
        angles = torch.cat([angles, angles], dim=-1)  # (n_ctx, hs)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        T = x.shape[-2]
        cos, sin = self.cos[start : start + T], self.sin[start : start + T]  # (T, hs)
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def table(rows: int, dim: int) -> nn.Embedding:
    """nn.Embedding, minus its own init on the meta device (core.loading.weights.empty_model), where normal_ costs seconds
    of one-time imports. Elsewhere the default N(0, 1) draw stays, though _init_weights overwrites it: it keeps the
    random stream, and so `core.train`'s results, as they were."""
    embedding = nn.Embedding(rows, dim, _weight=torch.empty(rows, dim))
    if embedding.weight.device.type != "meta":
        nn.init.normal_(embedding.weight)
    return embedding


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, prefix: str, layer: int):
        super().__init__()
        self.cfg, self.prefix, self.layer = cfg, prefix, layer
        nh, nkv, hs = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        self.split = (nh * hs, nkv * hs, nkv * hs)
        self.qkv = nn.Linear(cfg.d_model, sum(self.split), bias=cfg.bias)  # q, k, v stacked in one matmul
        self.out = nn.Linear(nh * hs, cfg.d_model, bias=cfg.bias)

    # No dropout on the attention weights (only on the residual stream): dropping weights at random pushes a head
    # to spread its attention, and a learner should see the sharp heads a model can form.
    def forward(
        self,
        x: torch.Tensor,
        rec: Recorder | None,
        rotary: Rotary | None,
        past: tuple[torch.Tensor, torch.Tensor] | None,
        memory: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, T, d) → (output (B, T, d), this call's keys and values for the KV cache). `memory` is for
        core.seq2seq's cross-attention, whose keys and values come from the encoder's output."""
        cfg, p = self.cfg, self.prefix
        B, T, _ = x.shape
        nh, nkv, hs = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        q, k, v, start = self.project(x, rotary, past, memory)
        S = k.shape[2]
        if rec is not None:
            q = rec(p + "hook_q", q.transpose(1, 2)).transpose(1, 2)  # recorded (B, T, nh, hs); q (B, nh, T, hs)
            k = rec(p + "hook_k", k.transpose(1, 2)).transpose(1, 2)  # recorded (B, S, nkv, hs)
            v = rec(p + "hook_v", v.transpose(1, 2)).transpose(1, 2)  # recorded (B, S, nkv, hs)
        explicit = rec is not None and (rec.wants(p + "hook_attn_scores") or rec.wants(p + "hook_pattern"))
        if explicit:
            k_rep = k.repeat_interleave(nh // nkv, dim=1)  # (B, nh, S, hs)
            v_rep = v.repeat_interleave(nh // nkv, dim=1)  # (B, nh, S, hs)
            # Scaling q (T·hs numbers) instead of the scores (T·S) saves a pass over the biggest tensor here.
            q = q * (1.0 / math.sqrt(hs))
            keep_scores = rec.wants(p + "hook_attn_scores") or (torch.is_grad_enabled() and q.requires_grad)
            if cfg.causal and start == 0 and not keep_scores:
                z = self.causal_blocks(q, k_rep, v_rep, rec)
            else:
                scores = q @ k_rep.transpose(-2, -1)  # (B, nh, T, S)
                hidden = attention_mask(cfg, start, S, x.device)
                if hidden is not None:
                    scores.masked_fill_(hidden, float("-inf"))
                if keep_scores:
                    rec(p + "hook_attn_scores", scores)
                    pattern = scores.softmax(dim=-1)  # (B, nh, T, S)
                else:  # nobody keeps the scores: softmax in place, no second T·S buffer
                    pattern = torch.softmax(scores, dim=-1, out=scores)  # (B, nh, T, S)
                if cfg.causal and start == 0:
                    rec.pattern_rows(p + "hook_pattern", 0, pattern, T)
                else:
                    rec(p + "hook_pattern", pattern)
                z = pattern @ v_rep  # (B, nh, T, hs)
        else:
            mask, is_causal = sdpa_mask(cfg, start, S, x.device)
            z = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal and T > 1, enable_gqa=nh != nkv
            )  # (B, nh, T, hs)
        z = z.transpose(1, 2)  # (B, T, nh, hs)
        z = _rec(rec, p + "hook_z", z)  # an Ablation's switched-off heads are zeroed here
        return self.out(z.reshape(B, T, nh * hs)), (k, v)  # (B, T, d)

    def project(self, x: torch.Tensor, rotary: Rotary | None, past: tuple[torch.Tensor, torch.Tensor] | None,
                memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Self-attention's q, k, v, all from x (after RoPE; cached keys and values in front), and the position of
        x's first token."""
        cfg = self.cfg
        B, T, _ = x.shape
        nh, nkv, hs = cfg.n_heads, cfg.kv_heads, cfg.head_dim
        q, k, v = self.qkv(x).split(self.split, dim=-1)
        q = q.view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = v.view(B, T, nkv, hs).transpose(1, 2)  # (B, nkv, T, hs)
        start = 0 if past is None else past[0].shape[2]
        if rotary is not None:
            q, k = rotary(q, start), rotary(k, start)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, nkv, S, hs)
            v = torch.cat([past[1], v], dim=2)  # (B, nkv, S, hs)
        return q, k, v, start

    def causal_blocks(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rec: Recorder) -> torch.Tensor:
        """softmax(q·kᵀ + causal mask)·v, ATTN_BLOCK query rows at a time (q already scaled; all (B, nh, T, hs)).

        Rows a .. b see keys 0 .. b - 1 only, so the scores right of the block are never computed (about half of
        T×T for long inputs), and a block's scores (a few MB) are masked, softmaxed, recorded and multiplied by v
        while still in the CPU's cache. The result is the one-matrix path's, row for row; the pattern goes to the
        recorder block by block.
        """
        T = q.shape[2]
        name = self.prefix + "hook_pattern"
        out = []
        for a in range(0, T, ATTN_BLOCK):
            b = min(T, a + ATTN_BLOCK)
            scores = q[:, :, a:b] @ k[:, :, :b].transpose(-2, -1)  # (B, nh, b - a, b)
            scores.masked_fill_(attention_mask(self.cfg, a, b, q.device), float("-inf"))
            pattern = torch.softmax(scores, dim=-1, out=scores)  # in place: the scores are not kept
            rec.pattern_rows(name, a, pattern, T)
            out.append(pattern @ v[:, :, :b])  # (B, nh, b - a, hs)
        return out[0] if len(out) == 1 else torch.cat(out, dim=2)  # (B, nh, T, hs)


ACTIVATION_NAMES = {"gelu": "GELU (tanh approximation)", "gelu_exact": "GELU (exact, erf)", "relu": "ReLU",
                    "swiglu": "SiLU (SwiGLU's gate)"}


def activation(kind: str, x: torch.Tensor) -> torch.Tensor:
    """The MLP's activation (cfg.mlp) on its pre-activation; SwiGLU applies SiLU to its gate, then multiplies by the
    up branch. GPT-2's "gelu_new" is the tanh approximation; BERT uses the exact erf form."""
    if kind == "swiglu":
        return F.silu(x)
    if kind == "relu":
        return F.relu(x)
    return F.gelu(x, approximate="tanh" if kind == "gelu" else "none")


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, prefix: str):
        super().__init__()
        self.kind, self.prefix = cfg.mlp, prefix
        if cfg.mlp == "swiglu":
            self.fc_gate = nn.Linear(cfg.d_model, cfg.mlp_dim, bias=cfg.bias)
        self.fc_in = nn.Linear(cfg.d_model, cfg.mlp_dim, bias=cfg.bias)
        self.fc_out = nn.Linear(cfg.mlp_dim, cfg.d_model, bias=cfg.bias)

    def forward(self, x: torch.Tensor, rec: Recorder | None) -> torch.Tensor:
        p = self.prefix
        if self.kind == "swiglu":
            pre_linear = _rec(rec, p + "hook_pre_linear", self.fc_in(x))  # (B, T, m)
            pre = _rec(rec, p + "hook_pre", self.fc_gate(x))  # (B, T, m)
            post = activation(self.kind, pre) * pre_linear  # (B, T, m)
        else:
            pre = _rec(rec, p + "hook_pre", self.fc_in(x))  # (B, T, m)
            post = activation(self.kind, pre)  # (B, T, m)
        post = _rec(rec, p + "hook_post", post)
        return self.fc_out(post)  # (B, T, d)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, index: int, root: str = ""):
        super().__init__()
        self.prefix = p = f"{root}blocks.{index}."  # root: "encoder." in core.seq2seq
        self.dropout, self.post_norm = cfg.dropout, cfg.post_norm
        self.ln1, self.ln2 = make_norm(cfg), make_norm(cfg)
        self.index = index
        self.attn = Attention(cfg, p + "attn.", index)
        self.mlp = MLP(cfg, p + "mlp.")

    def forward(self, x, rec, rotary, past):
        if self.post_norm:
            return self.forward_post_norm(x, rec, rotary, past)
        p = self.prefix
        x = _rec(rec, p + "hook_resid_pre", x)
        h = _rec(rec, p + "ln1.hook_normalized", self.ln1(x))  # (B, T, d)
        attn_out, present = self.attn(h, rec, rotary, past)  # (B, T, d)
        attn_out = _rec(rec, p + "hook_attn_out", attn_out)
        x = _rec(rec, p + "hook_resid_mid", x + F.dropout(attn_out, self.dropout, self.training))  # (B, T, d)
        h = _rec(rec, p + "ln2.hook_normalized", self.ln2(x))  # (B, T, d)
        mlp_out = _rec(rec, p + "hook_mlp_out", self.mlp(h, rec))  # (B, T, d); an Ablation's MLP off: zeroed here
        x = _rec(rec, p + "hook_resid_post", x + F.dropout(mlp_out, self.dropout, self.training))  # (B, T, d)
        return x, present

    def forward_post_norm(self, x, rec, rotary, past):
        """BERT's order: the residual add comes first, the norm after it."""
        p = self.prefix
        x = _rec(rec, p + "hook_resid_pre", x)
        attn_out, present = self.attn(x, rec, rotary, past)  # (B, T, d)
        attn_out = _rec(rec, p + "hook_attn_out", attn_out)
        x = self.ln1(x + F.dropout(attn_out, self.dropout, self.training))  # (B, T, d)
        x = _rec(rec, p + "ln1.hook_normalized", x)
        x = _rec(rec, p + "hook_resid_mid", x)
        mlp_out = _rec(rec, p + "hook_mlp_out", self.mlp(x, rec))  # (B, T, d)
        x = self.ln2(x + F.dropout(mlp_out, self.dropout, self.training))  # (B, T, d)
        x = _rec(rec, p + "ln2.hook_normalized", x)
        x = _rec(rec, p + "hook_resid_post", x)
        return x, present


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.tokenizer = None  # set by the loaders; a bare checkpoint has none
        self.source: str | None = None  # the file or folder the loaders read the weights from
        self.embed = table(cfg.vocab_size, cfg.d_model)
        self.pos_embed: nn.Module | None = {
            "learned": lambda: table(cfg.n_ctx, cfg.d_model),
            "sinusoidal": lambda: SinusoidalPositions(cfg),
            "rope": lambda: None,
        }[cfg.positional]()
        self.rotary = Rotary(cfg) if cfg.positional == "rope" else None
        self.token_type_embed = table(cfg.n_token_types, cfg.d_model) if cfg.n_token_types else None
        self.ln_embed = make_norm(cfg) if cfg.post_norm else None
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.ln_final = None if cfg.post_norm else make_norm(cfg)
        untied = cfg.lm_head and not cfg.tied_embeddings
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False) if untied else None
        if self.embed.weight.device.type == "meta":  # built to be loaded (core.loading.weights.empty_model): no init
            return
        self.apply(self._init_weights)
        for name, param in self.named_parameters():  # GPT-2: scale residual projections by 1/sqrt(2 * n_layers)
            if name.endswith(("attn.out.weight", "mlp.fc_out.weight")):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def num_params(self, non_embedding: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.embed.weight.numel()
            for embedding in (self.pos_embed, self.token_type_embed):
                if isinstance(embedding, nn.Embedding):
                    n -= embedding.weight.numel()
        return n

    @property
    def unembedding(self) -> torch.Tensor:
        """(V, d): the matrix that turns the final-norm output into logits — the embedding's own when tied."""
        if not self.config.lm_head:
            raise ValueError(f"{self.config.name} is an encoder with no language-model head: it has no next-token logits")
        return self.embed.weight if self.unembed is None else self.unembed.weight

    def unembed_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Final-norm output → logits over the vocabulary."""
        return F.linear(x, self.unembedding)  # (..., V)

    def forward(
        self,
        idx: torch.Tensor,
        rec: Recorder | None = None,
        past: KVCache | None = None,
        logits: str = "last",
        positions: bool = True,
        kv_cache: bool = True,
    ) -> tuple[torch.Tensor | None, KVCache]:
        """idx (B, T) token ids → (logits, new KV cache).

        logits: "last" → (B, V) for the last position; "all" → (B, T, V); "none" → None.
        kv_cache=False returns no cache ([]): each layer's keys and values are views of its fused q·k·v product, so
        keeping them keeps that whole buffer (SmolLM2 at 8,192 tokens: 1.1 GB over 30 layers) for nobody.
        positions=False runs the same weights with the position signal removed (no position vectors added, no
        RoPE rotation): an experiment, to see what the model does when it cannot tell where a token is.
        """
        cfg = self.config
        B, T = idx.shape
        start = 0 if past is None else past[0][0].shape[2]
        if start + T > cfg.n_ctx:
            raise ValueError(f"{start + T} tokens exceed the context length {cfg.n_ctx}")
        if logits != "none" and not cfg.lm_head:
            raise ValueError(f"{cfg.name} is an encoder with no language-model head: ask for logits='none'")
        x = _rec(rec, "hook_embed", self.embed(idx))  # (B, T, d)
        if self.pos_embed is not None and positions:
            pos = self.pos_embed(torch.arange(start, start + T, device=idx.device))  # (T, d)
            pos = pos.expand(B, T, cfg.d_model)  # (B, T, d)
            pos = _rec(rec, "hook_pos_embed", pos)
            x = x + pos
        if self.token_type_embed is not None:  # one sentence: every token is segment A (type 0)
            types = self.token_type_embed(torch.zeros_like(idx))  # (B, T, d)
            types = _rec(rec, "hook_token_type_embed", types)
            x = x + types
        if self.ln_embed is not None:
            x = _rec(rec, "ln_embed.hook_normalized", self.ln_embed(x))  # (B, T, d)
        x = F.dropout(x, cfg.dropout, self.training)
        presents: KVCache = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, rec, self.rotary if positions else None, None if past is None else past[i])
            if kv_cache:
                presents.append(present)
            del present
        if self.ln_final is not None:
            x = _rec(rec, "ln_final.hook_normalized", self.ln_final(x))  # (B, T, d)
        if logits == "none":
            return None, presents
        if logits == "last":
            return self.unembed_logits(x[:, -1]), presents  # (B, V)
        return self.unembed_logits(x), presents  # (B, T, V)
