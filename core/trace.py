"""trace(): run the model once on a text and keep what it computed, in a plain picklable Trace.

A Trace holds token ids, their display strings and bytes, the recorded intermediates (detached, on CPU, batch
dimension removed) and the logits that were asked for. It holds no reference to the model, so it can be cached
and shared between browser sessions.

By default a trace keeps the embedding stage and the residual stream (core.model.DEFAULT_RECORD); what happens
inside a block is computed from the stream entering it when a view asks (`grow`, `layer_pattern`): one block run
again, on the same inputs with the same weights, so the same numbers.

Attention patterns grow as T²: recorded for a causal model's inputs longer than COMPACT_FROM tokens they are kept as
float16 without the masked upper triangle (all zeros; core.model.Recorder), which cuts them to about a quarter;
`pattern(layer)` and `tr[name]` unpack them to float32 (absolute error below 5e-4). Shorter inputs keep every
pattern exact.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from core.budget import give_back_freed_memory
from core.config import ModelConfig
from core.interventions import edits_for
from core.loading.integrity import check_logits
from core.model import (
    ATTN_BLOCK,
    DEFAULT_RECORD,
    Ablation,
    Recorder,
    Transformer,
    attention_mask,
    blocked_size,
)
from core.tokenizer import token_ids

COMPACT_FROM = 256  # tokens
# The residual stream only (block i's resid_pre is block i-1's resid_post): what a long input keeps, every head's
# pattern then computed on demand (head_pattern, with_attention).
RESIDUAL_RECORD = ("blocks.0.hook_resid_pre", "blocks.*.hook_resid_post")
CHECKPOINT_EVERY = 6  # blocks: a whole-text trace keeps the stream entering every 6th block (see checkpoint_record)


def checkpoint_record(cfg: ModelConfig, every: int = CHECKPOINT_EVERY) -> tuple[str, ...]:
    """The streams entering blocks 0, every, 2·every, …: what a trace of a very long input keeps (SmolLM2 at 4,880
    tokens: 5 streams, 56 MB, where every block's would be 349 MB). The stream entering any other block is
    recomputed from the checkpoint below it by at most every − 1 blocks (`stream_into`), with the model's weights:
    the same numbers."""
    return tuple(hook(i, "hook_resid_pre") for i in range(0, cfg.n_layers, every))


def unpack_pattern(packed: torch.Tensor, T: int) -> torch.Tensor:
    """(heads, blocked_size(T)) float16 (core.model.Recorder's compact patterns) → (heads, T, T) float32."""
    out = torch.zeros(packed.shape[0], T, T)
    for a in range(0, T, ATTN_BLOCK):
        b = min(T, a + ATTN_BLOCK)
        out[:, a:b, :b] = packed[:, blocked_size(a) : blocked_size(b)].view(-1, b - a, b)
    return out


def hook(layer: int, name: str) -> str:
    """The recorded name of a block's tensor: hook(3, "attn.hook_q") == "blocks.3.attn.hook_q"."""
    return f"blocks.{layer}.{name}"


def attention_record(layer: int) -> tuple[str, ...]:
    """What to record to show one layer's attention step by step: q, k, v, scores, pattern and z."""
    return tuple(hook(layer, "attn." + n) for n in ("hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern",
                                                    "hook_z"))


def mlp_record(layer: int) -> tuple[str, ...]:
    """What to record to show one layer's feed-forward step by step: its input, hidden units and output."""
    return tuple(hook(layer, n) for n in ("ln2.hook_normalized", "mlp.hook_pre_linear", "mlp.hook_pre", "mlp.hook_post",
                                          "hook_mlp_out", "hook_resid_mid"))


def _copy_of(name: str, doc: str) -> property:
    """A read-only attribute that hands out a copy of the tensor stored under `name` (or None)."""

    def get(self) -> torch.Tensor | None:
        value = getattr(self, name)
        return None if value is None else value.clone()

    return property(get, doc=doc)


@dataclass
class Trace:
    """What one forward pass computed. A cached Trace is shared by every browser session, so everything it hands out
    is a fresh copy: writing into a returned tensor never reaches the cache."""

    token_ids: list[int]
    tokens: list[str]  # display strings (partial UTF-8 bytes as \xNN)
    token_bytes: list[bytes]
    config: ModelConfig
    _cache: dict[str, torch.Tensor] = field(repr=False)
    _logits: torch.Tensor | None = field(default=None, repr=False)  # (V,) at the last position
    _all_logits: torch.Tensor | None = field(default=None, repr=False)  # (T, V), only when asked
    _lens_ids: torch.Tensor | None = field(default=None, repr=False)  # (n_layers, T, k): top-k after each block
    _lens_probs: torch.Tensor | None = field(default=None, repr=False)  # (n_layers, T, k)
    n_truncated: int = 0  # tokens cut off because the input exceeded the context length
    _packed: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # compact patterns, see above
    edited: bool = False  # a run with something changed inside (switched off, positions removed…): `grow` refuses it

    def __getitem__(self, name: str) -> torch.Tensor:
        """A recorded tensor by its name (see core.model's table), as a copy."""
        if name in self._packed:
            return unpack_pattern(self._packed[name], self.n_tokens)
        try:
            return self._cache[name].clone()
        except KeyError:
            raise KeyError(f"{name!r} was not recorded; recorded: {self.names}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._cache or name in self._packed

    @property
    def names(self) -> list[str]:
        return list(self._cache) + list(self._packed)

    @property
    def compact_names(self) -> list[str]:
        """The patterns held as float16 triangles (see COMPACT_FROM)."""
        return list(self._packed)

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data this trace holds."""
        tensors = [*self._cache.values(), *self._packed.values()]
        tensors += [t for t in (self._logits, self._all_logits, self._lens_ids, self._lens_probs) if t is not None]
        return sum(t.numel() * t.element_size() for t in tensors)

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def lacks(self, record: str | Iterable[str] = (), logits: str = "last", lens_top_k: int | None = None) -> bool:
        """True when this trace does not hold everything asked (recorded names or patterns, every position's logits,
        the logit lens with at least `lens_top_k` tokens): what `grow` would add."""
        if missing_names(self, record):
            return True
        if not self.config.lm_head:
            return False
        return (logits == "all" and self._all_logits is None) or bool(
            lens_top_k and (self._lens_ids is None or self._lens_ids.shape[-1] < lens_top_k))

    logits = _copy_of("_logits", "(V,) the last position's logits (None for an encoder).")
    all_logits = _copy_of("_all_logits", '(T, V), when the trace was asked for logits="all".')
    lens_ids = _copy_of("_lens_ids", "(n_layers, T, k) the logit lens: the top-k tokens after each block.")
    lens_probs = _copy_of("_lens_probs", "(n_layers, T, k) their probabilities.")

    @property
    def probs(self) -> torch.Tensor:
        """Softmax of the last position's logits: the model's next-token distribution."""
        return self._logits.softmax(dim=-1)

    def hidden(self) -> torch.Tensor:
        """(T, T) bool: True where a query may NOT see a key (the model's own mask; all False for an encoder)."""
        mask = attention_mask(self.config, 0, self.n_tokens)
        return torch.zeros(self.n_tokens, self.n_tokens, dtype=torch.bool) if mask is None else mask.clone()

    def embed(self) -> torch.Tensor:
        """(T, d) the embedding row of each token."""
        return self["hook_embed"]

    def pattern(self, layer: int) -> torch.Tensor:
        """(heads, T, T) attention weights of one layer, after softmax (float32), when the trace recorded them (the
        default trace does not: core.trace.layer_pattern computes them from the stream it kept)."""
        name = hook(layer, "attn.hook_pattern")
        if name not in self:
            raise KeyError(f"{name!r} was not recorded (the default trace keeps the residual stream only): record it, "
                           "grow the trace with it, or compute it with core.trace.layer_pattern(model, tr, layer)")
        return self[name].float()

    def attn_scores(self, layer: int) -> torch.Tensor:
        """(heads, T, T) scaled, masked scores before softmax."""
        return self[hook(layer, "attn.hook_attn_scores")]

    def z(self, layer: int) -> torch.Tensor:
        """(T, heads, hs) each head's weighted sum of values."""
        return self[hook(layer, "attn.hook_z")]

    def resid_pre(self, layer: int) -> torch.Tensor:
        """(T, d) residual stream entering block `layer`."""
        return self[hook(layer, "hook_resid_pre")] if layer == 0 or hook(layer, "hook_resid_pre") in self \
            else self.resid_post(layer - 1)

    def resid_post(self, layer: int) -> torch.Tensor:
        """(T, d) residual stream leaving block `layer`."""
        return self[hook(layer, "hook_resid_post")]

    def resid_mid(self, layer: int) -> torch.Tensor:
        """(T, d) residual stream between block `layer`'s attention and its MLP."""
        return self[hook(layer, "hook_resid_mid")]

    def attn_out(self, layer: int) -> torch.Tensor:
        """(T, d) what block `layer`'s attention adds to the residual stream."""
        return self[hook(layer, "hook_attn_out")]

    def mlp_out(self, layer: int) -> torch.Tensor:
        """(T, d) what block `layer`'s MLP adds to the residual stream."""
        return self[hook(layer, "hook_mlp_out")]

    def mlp_in(self, layer: int) -> torch.Tensor:
        """(T, d) what block `layer`'s MLP reads (pre-norm: ln2's output; post-norm: the stream after ln1)."""
        name = hook(layer, "ln2.hook_normalized")
        return self.resid_mid(layer) if self.config.post_norm or name not in self else self[name]

    def mlp_pre(self, layer: int) -> torch.Tensor:
        """(T, m) the MLP's hidden units before the activation (SwiGLU: the gate)."""
        return self[hook(layer, "mlp.hook_pre")]

    def mlp_pre_linear(self, layer: int) -> torch.Tensor:
        """(T, m) SwiGLU only: the linear ("up") branch the activated gate multiplies."""
        return self[hook(layer, "mlp.hook_pre_linear")]

    def mlp_post(self, layer: int) -> torch.Tensor:
        """(T, m) the MLP's hidden units after the activation (SwiGLU: silu(gate) × up)."""
        return self[hook(layer, "mlp.hook_post")]

    def qkv(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (T, nh, hs), k and v (T, nkv, hs) of one layer."""
        return tuple(self[hook(layer, "attn." + n)] for n in ("hook_q", "hook_k", "hook_v"))


def pattern_bytes(cfg: ModelConfig, n_tokens: int) -> int:
    """Bytes the attention patterns of one trace take (see COMPACT_FROM)."""
    heads = cfg.n_layers * cfg.n_heads
    if cfg.causal and n_tokens > COMPACT_FROM:
        return heads * blocked_size(n_tokens) * 2  # float16, no upper triangle
    return heads * n_tokens * n_tokens * 4


TRACE_BUDGET = 2_000_000_000  # bytes of recorded tensors one trace may hold (GLASSBOX_TRACE_BUDGET overrides)


def recording_bytes(cfg: ModelConfig, rec: Recorder, n_tokens: int) -> int:
    """What the recorder will hold for n_tokens, counting the tensors that grow as T² (patterns and scores) and the
    (T, d)-sized ones; the rest (q, k, v, z, MLP activations) is counted at their own sizes."""
    T, d, nh, hs = n_tokens, cfg.d_model, cfg.n_heads, cfg.head_dim
    per_layer = {"attn.hook_pattern": pattern_bytes(cfg, T) // cfg.n_layers,
                 "attn.hook_attn_scores": nh * T * T * 4,
                 "attn.hook_q": T * nh * hs * 4, "attn.hook_k": T * cfg.kv_heads * hs * 4,
                 "attn.hook_v": T * cfg.kv_heads * hs * 4, "attn.hook_z": T * nh * hs * 4,
                 "mlp.hook_pre": T * cfg.mlp_dim * 4, "mlp.hook_pre_linear": T * cfg.mlp_dim * 4,
                 "mlp.hook_post": T * cfg.mlp_dim * 4}
    total = 0
    for layer in range(cfg.n_layers):
        for name, size in per_layer.items():
            total += size if rec.wants(hook(layer, name)) else 0
        total += sum(T * d * 4 for n in ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out",
                                          "hook_mlp_out", "ln1.hook_normalized", "ln2.hook_normalized")
                     if rec.wants(hook(layer, n)))
    return total


def trace_budget() -> int:
    raw = os.environ.get("GLASSBOX_TRACE_BUDGET", "")
    return int(float(raw)) if raw.strip() else TRACE_BUDGET


def check_budget(cfg: ModelConfig, rec: Recorder, n_tokens: int) -> None:
    """A clear ValueError, before anything is allocated, when what `rec` asks for would outgrow the trace budget."""
    needed, budget = recording_bytes(cfg, rec, n_tokens), trace_budget()
    if needed > budget:
        raise ValueError(
            f"recording this on {n_tokens:,} tokens would hold {needed / 1e9:.1f} GB, over the trace budget of "
            f"{budget / 1e9:.1f} GB (GLASSBOX_TRACE_BUDGET): record less (the patterns grow as tokens², e.g. "
            'record=("blocks.*.hook_resid_post",)) and compute one head\'s pattern with core.trace.head_pattern, or '
            "pass max_tokens")


def token_limit(cfg: ModelConfig, max_pattern_bytes: int = 190_000_000) -> int:
    """The most tokens an interactive view should trace: the context length, or fewer when the attention
    patterns would outgrow `max_pattern_bytes` (SmolLM2's 8,192-token context would need 18 GB of patterns)."""
    sizes = sorted({cfg.n_ctx, *(n for n in (128, 256, 384, 512, 768, 1024, 1536, 2048) if n < cfg.n_ctx)},
                   reverse=True)
    return next((n for n in sizes if pattern_bytes(cfg, n) <= max_pattern_bytes), sizes[-1])


TRIM_FROM = 1024  # tokens: after a forward this long, freed activations are handed back to the OS


LENS_ROWS = 256  # rows per unembedding product: 256 × 49,152 logits is 50 MB on SmolLM2


def lens_tops(model: Transformer, stream: torch.Tensor, k: int, normed: list[bool] | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit lens: top-k ids and probabilities, (S, T, k), of the final norm and unembedding applied to a
    residual stream (S, T, d) taken after S stages (`normed[s]`: stage s is already through the final norm). Every
    stage and token goes through one product per LENS_ROWS rows — one product per stage would read the whole
    unembedding matrix (113 MB on SmolLM2) once per stage."""
    S, T, d = stream.shape
    normed = normed or [False] * S
    with torch.inference_mode():
        x = stream.to(model.device, model.embed.weight.dtype)
        x = torch.stack([x[s] if normed[s] else model.ln_final(x[s]) for s in range(S)])
        ids, probs = [], []
        for rows in x.reshape(S * T, d).split(LENS_ROWS):
            top = model.unembed_logits(rows).float().softmax(-1).topk(k, dim=-1)
            ids.append(top.indices.cpu())
            probs.append(top.values.cpu())
    return torch.cat(ids).reshape(S, T, k), torch.cat(probs).reshape(S, T, k)


def _lens(model: Transformer, rec: Recorder, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The logit lens from the recorded resid_post of every block: top-k ids and probabilities, (n_layers, T, k)."""
    return lens_tops(model, torch.stack([rec.store[f"blocks.{i}.hook_resid_post"][0]
                                         for i in range(model.config.n_layers)]), k)


def trace(
    model: Transformer,
    text_or_ids: str | Iterable[int],
    record: str | Iterable[str] = DEFAULT_RECORD,
    logits: str = "last",
    lens_top_k: int | None = None,
    max_tokens: int | None = None,
    positions: bool = True,
    ablate: dict | None = None,
    steer: dict | None = None,
    patch: dict | list[dict] | None = None,
) -> Trace:
    """Run `model` on a text (or token ids) and record the named intermediates.

    record: exact names or fnmatch patterns ("*" for everything), see core.model's table.
    logits: "last" (default, (V,)), "all" (also keeps (T, V) in `all_logits`) or "none".
    lens_top_k: also keep the logit lens, the top-k tokens after every block at every position.
    positions=False: the position signal removed (see Transformer.forward), for the word-order experiment.
    ablate: parts switched off for this call only, {"heads": [(layer, head), …], "mlps": [layer, …]} (see
    core.model.Ablation): a head's z or an MLP layer's output is zeroed on the same recorded path. The shared model
    is not modified; an empty ablation gives bit-identical results.
    steer: {"layer": L, "vector": v, "scale": s} adds s·v to the residual stream entering block L at every position;
    patch: {"layer": L, "position": p, "source": another_trace} copies that trace's stream entering block L at p
    (core.interventions). Like `ablate`, edits carried by this call's recorder; scale 0 changes nothing. Input longer
    than the context (or `max_tokens`) keeps its first tokens (`n_truncated` counts the rest). An encoder (no
    language-model head) records no logits and no lens, whatever is asked."""
    if max_tokens is not None and max_tokens <= 0:
        raise ValueError(f"max_tokens must be a positive number of tokens, not {max_tokens}")
    if not model.config.lm_head:
        logits, lens_top_k = "none", None
    ablation = Ablation.parse(ablate, model.config)
    ids = token_ids(model, text_or_ids)
    if not ids:
        raise ValueError("nothing to trace: the input has no tokens")
    limit = model.config.n_ctx if max_tokens is None else min(max_tokens, model.config.n_ctx)
    n_truncated, ids = max(0, len(ids) - limit), ids[:limit]
    edits = edits_for(model.config, len(ids), steer=steer, patch=patch)
    wanted = Recorder(record)
    compact = len(ids) > COMPACT_FROM and model.config.causal  # an encoder's pattern has no zero triangle to drop
    rec = Recorder(wanted.patterns + (("blocks.*.hook_resid_post",) if lens_top_k else ()), compact_patterns=compact,
                   ablation=ablation, edits=edits)
    check_budget(model.config, rec, len(ids))
    idx = torch.tensor([ids], dtype=torch.long, device=model.device)  # (1, T)
    with torch.inference_mode():
        out, _ = model(idx, rec=rec, logits="all" if logits == "all" else ("none" if logits == "none" else "last"),
                       positions=positions, kv_cache=False)
        lens_ids, lens_probs = _lens(model, rec, lens_top_k) if lens_top_k else (None, None)
    if len(ids) >= TRIM_FROM:
        give_back_freed_memory()
    check_logits(out, getattr(model, "source", None))
    all_logits = last = None
    if out is not None:
        out = out[0].float().cpu()
        all_logits, last = (out, out[-1]) if logits == "all" else (None, out)
    return Trace(
        token_ids=ids, **_token_strings(model, ids), config=model.config, _logits=last, _all_logits=all_logits,
        _cache={name: t[0].cpu() for name, t in rec.store.items() if wanted.wants(name)}, _lens_ids=lens_ids,
        _lens_probs=lens_probs, n_truncated=n_truncated, _packed={name: t[0].cpu() for name, t in rec.packed.items()},
        edited=ablation is not None or not positions or bool(edits),
    )


def _token_strings(model: Transformer, ids: list[int]) -> dict[str, list]:
    """A Trace's `tokens` (display strings) and `token_bytes` for ids (ids themselves without a tokenizer)."""
    tok = model.tokenizer
    if tok is None:
        return {"tokens": [str(i) for i in ids], "token_bytes": [b""] * len(ids)}
    return {"tokens": [tok.display(i) for i in ids], "token_bytes": [tok.token_bytes(i) for i in ids]}


_ATTN_NAMES = ("attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern",
               "attn.hook_z")
_MLP_NAMES = ("mlp.hook_pre_linear", "mlp.hook_pre", "mlp.hook_post")
# One block's names in the order it records them: pre-LN x + attn(ln1(x)), then x + mlp(ln2(x)); post-LN (BERT)
# ln1(x + attn(x)), then ln2(x + mlp(x)).
PRE_NORM_BLOCK = ("hook_resid_pre", "ln1.hook_normalized", *_ATTN_NAMES, "hook_attn_out", "hook_resid_mid",
                  "ln2.hook_normalized", *_MLP_NAMES, "hook_mlp_out", "hook_resid_post")
POST_NORM_BLOCK = ("hook_resid_pre", *_ATTN_NAMES, "hook_attn_out", "ln1.hook_normalized", "hook_resid_mid",
                   *_MLP_NAMES, "hook_mlp_out", "ln2.hook_normalized", "hook_resid_post")


def recordable(cfg: ModelConfig) -> list[str]:
    """Every name a forward pass of a model with this config can record, in the order it records them (core.model's
    table, for this family: no position vectors with RoPE, BERT's segment vectors and embedding norm, SwiGLU's linear
    branch, the final norm of pre-LN models)."""
    names = ["hook_embed"]
    names += ["hook_pos_embed"] if cfg.positional != "rope" else []
    names += ["hook_token_type_embed"] if cfg.n_token_types else []
    names += ["ln_embed.hook_normalized"] if cfg.post_norm else []
    per_block = [n for n in (POST_NORM_BLOCK if cfg.post_norm else PRE_NORM_BLOCK)
                 if cfg.mlp == "swiglu" or n != "mlp.hook_pre_linear"]
    names += [hook(i, n) for i in range(cfg.n_layers) for n in per_block]
    names += ["ln_final.hook_normalized"] if not cfg.post_norm else []
    return names


def missing_names(tr: Trace, record: str | Iterable[str]) -> list[str]:
    """The names (or matches of fnmatch patterns) in `record` that this model records and `tr` does not hold."""
    wanted = Recorder((record,) if isinstance(record, str) else tuple(record))
    return [n for n in recordable(tr.config) if wanted.wants(n) and n not in tr]


@torch.no_grad()
def grow(model: Transformer, tr: Trace, record: str | Iterable[str] = (), logits: str = "last",
         lens_top_k: int | None = None) -> Trace:
    """`tr` with more in it — the names (or fnmatch patterns) in `record` that it lacks, every position's logits
    (logits="all"), the logit lens (lens_top_k) — computed from what `tr` kept, never by a whole new forward pass:
    each block that owns a missing name runs again on the residual stream `tr` recorded entering it (1/n_layers of a
    forward each, the same inputs and weights, so the same numbers), the final norm and unembedding on the last
    stream. What `tr` already holds is kept as it is. `tr` itself is unchanged (the new Trace shares its tensors).

    `tr` must be a plain run of `model` (no ablation, positions on) that recorded the residual stream entering each
    block it needs (DEFAULT_RECORD and RESIDUAL_RECORD do); a ValueError says what is missing otherwise."""
    cfg = model.config
    if not tr.lacks(record, logits, lens_top_k):
        return tr
    if tr.edited:
        raise ValueError("this trace is an edited run (parts switched off or positions removed): grow computes the "
                         "plain model, so trace the edited run again with everything it needs recorded")
    missing = missing_names(tr, record)
    T = tr.n_tokens
    compact = T > COMPACT_FROM and cfg.causal
    check_budget(cfg, Recorder(tuple(tr.names) + tuple(missing), compact_patterns=compact), T)
    extra: dict[str, torch.Tensor] = {}
    packed: dict[str, torch.Tensor] = {}
    for layer in sorted({int(n.split(".")[1]) for n in missing if n.startswith("blocks.")}):
        names = [n for n in missing if n.startswith(f"blocks.{layer}.")]
        rec = Recorder(names, compact_patterns=compact)
        model.blocks[layer](_stream_into(tr, layer).to(model.device)[None], rec, model.rotary, None)
        extra.update({name: t[0].cpu() for name, t in rec.store.items()})
        packed.update({name: t[0].cpu() for name, t in rec.packed.items()})
    outside = [n for n in missing if not n.startswith("blocks.")]
    if outside == ["ln_final.hook_normalized"]:
        extra[outside[0]] = model.ln_final(_last_stream(tr).to(model.device)).cpu()
    elif outside:
        raise ValueError(f"the trace did not record {outside}, which only a new forward pass computes: record them "
                         "when tracing (DEFAULT_RECORD keeps the embedding-stage names)")
    all_logits, lens_ids, lens_probs = tr._all_logits, tr._lens_ids, tr._lens_probs
    if cfg.lm_head and logits == "all" and all_logits is None:
        final = _last_stream(tr).to(model.device)
        all_logits = model.unembed_logits(model.ln_final(final) if model.ln_final is not None else final).float().cpu()
    if cfg.lm_head and lens_top_k and (lens_ids is None or lens_ids.shape[-1] < lens_top_k):
        stream = torch.stack([_stream_into(tr, i + 1, extra) for i in range(cfg.n_layers)])
        lens_ids, lens_probs = lens_tops(model, stream, lens_top_k)
    return dataclasses.replace(tr, _cache={**tr._cache, **extra}, _packed={**tr._packed, **packed},
                               _all_logits=all_logits, _lens_ids=lens_ids, _lens_probs=lens_probs)


def _stream_into(tr: Trace, layer: int, extra: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """(T, d) the residual stream entering block `layer` (layer == n_layers: leaving the last block), from `tr` or
    from tensors just computed (`extra`)."""
    for name in (hook(layer, "hook_resid_pre"), hook(layer - 1, "hook_resid_post")):
        if extra and name in extra:
            return extra[name]
        if name in tr:
            return tr._cache[name]
    raise ValueError(f"the trace kept no residual stream entering block {layer}: trace with DEFAULT_RECORD or "
                     "RESIDUAL_RECORD to grow it")


def _last_stream(tr: Trace) -> torch.Tensor:
    return _stream_into(tr, tr.config.n_layers)


@torch.no_grad()
def with_attention(model: Transformer, tr: Trace, layer: int) -> Trace:
    """`tr` plus one layer's attention internals (`attention_record(layer)`: q, k, v, scores, pattern, z), computed
    from the residual stream `tr` recorded entering that layer: one block's attention instead of a whole forward
    pass (about 1/n_layers of the work), on the same inputs with the same weights, so the same numbers. `tr` must
    come from `model` without ablation (an ablated head's z would differ)."""
    if not 0 <= layer < model.config.n_layers:
        raise ValueError(f"layer {layer} is not in this model (layers 0 to {model.config.n_layers - 1})")
    names = attention_record(layer)
    if all(n in tr for n in names):
        return tr
    block = model.blocks[layer]
    x = tr.resid_pre(layer).to(model.device)[None]  # (1, T, d)
    rec = Recorder(names)
    block.attn(x if model.config.post_norm else block.ln1(x), rec, model.rotary, None)
    extra = {name: tensor[0].float().cpu() for name, tensor in rec.store.items()}
    return dataclasses.replace(tr, _cache={**tr._cache, **extra},
                               _packed={k: v for k, v in tr._packed.items() if k not in extra})


@torch.no_grad()
def stream_into(model: Transformer, tr: Trace, layer: int) -> torch.Tensor:
    """(T, d) the residual stream entering block `layer`: kept by `tr`, or recomputed from the nearest stream it
    kept before that block (a checkpoint, see checkpoint_record) by running the blocks between, on `model`'s device."""
    name = hook(layer, "hook_resid_pre")
    if name in tr or (layer > 0 and hook(layer - 1, "hook_resid_post") in tr):
        return tr.resid_pre(layer)
    if tr.edited:
        raise ValueError("this trace is an edited run: the blocks between its kept streams would run unedited")
    start = max((i for i in range(layer) if hook(i, "hook_resid_pre") in tr), default=None)
    if start is None:
        raise ValueError(f"the trace kept no residual stream at or before block {layer}")
    x = tr.resid_pre(start).to(model.device)[None]
    for i in range(start, layer):
        x, _ = model.blocks[i](x, None, model.rotary, None)
    return x[0].cpu()


@torch.no_grad()
def layer_pattern(model: Transformer, tr: Trace, layer: int, rows: int | None = None) -> torch.Tensor:
    """(heads, n, n) one layer's attention weights over the first n = `rows` tokens (default: all): the recorded
    pattern when `tr` holds it, else computed from the residual stream `tr` recorded entering the layer — that
    layer's attention alone (its norm, q and k with RoPE, the mask, softmax), about 1/n_layers of a forward's
    attention. A causal model's first n tokens attend to those tokens only, so only they run; an encoder's every
    token runs, and the first n rows and columns are returned."""
    cfg = model.config
    if not 0 <= layer < cfg.n_layers:
        raise ValueError(f"layer {layer} is not in this model (layers 0 to {cfg.n_layers - 1})")
    name = hook(layer, "attn.hook_pattern")
    n = tr.n_tokens if rows is None else max(1, min(rows, tr.n_tokens))
    if name in tr:
        return tr.pattern(layer)[:, :n, :n]
    if tr.edited:
        raise ValueError("this trace is an edited run: record the patterns when tracing it (the stream it kept comes "
                         "from the edited model, which this function does not re-create)")
    block = model.blocks[layer]
    x = tr.resid_pre(layer)
    x = (x[:n] if cfg.causal else x).to(model.device)[None]  # (1, n or T, d)
    rec = Recorder((name,))
    block.attn(x if cfg.post_norm else block.ln1(x), rec, model.rotary, None)
    return rec.store[name][0, :, :n, :n].float().cpu()


def layer_patterns(model: Transformer, tr: Trace, rows: int | None = None) -> Iterable[torch.Tensor]:
    """`layer_pattern` of every layer in turn, one at a time: a reduction over all layers never holds them all."""
    return (layer_pattern(model, tr, layer, rows) for layer in range(model.config.n_layers))


@torch.no_grad()
def head_pattern(model: Transformer, tr: Trace, layer: int, head: int, stream: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """(T, T) one head's attention weights, computed from the residual stream `tr` recorded entering `layer`: its
    q and k (RoPE included), q·kᵀ/√hs, the model's mask, softmax — the model's own pattern, to float rounding,
    without any pattern having been stored. At SmolLM2's 8,192 tokens it is 268 MB where all 270 heads would be
    18 GB; `tr` needs only the residual stream (RESIDUAL_RECORD), or some of it (checkpoint_record: the blocks
    between are run again, `stream_into`). `stream`: the (T, d) stream entering `layer`, when the caller has it."""
    cfg = model.config
    if not (0 <= layer < cfg.n_layers and 0 <= head < cfg.n_heads):
        raise ValueError(f"layer {layer} head {head} is not in this model ({cfg.n_layers} × {cfg.n_heads})")
    block = model.blocks[layer]
    x = (stream_into(model, tr, layer) if stream is None else stream).to(model.device)[None]  # (1, T, d)
    q, k, _, _ = block.attn.project(x if cfg.post_norm else block.ln1(x), model.rotary, None, None)
    q = q[0, head] * (1.0 / math.sqrt(cfg.head_dim))  # (T, hs), scaled as the model does
    scores = q @ k[0, cfg.kv_head(head)].T  # (T, T)
    hidden = attention_mask(cfg, 0, scores.shape[-1], scores.device)
    if hidden is not None:
        scores.masked_fill_(hidden, float("-inf"))
    return torch.softmax(scores, dim=-1, out=scores).cpu()  # in place: one T×T buffer
