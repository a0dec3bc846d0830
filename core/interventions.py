"""Causal experiments: change one thing inside the model for one forward call and watch the prediction move.

Every intervention is a core.model.Edit carried by the call's Recorder — never a hook or a write on the shared
model — so one cached model serves every browser session, each with its own edits, on its own thread. This module
turns the experiments' plain specs into Edits and runs the ones that take many forward passes:

- steering (`trace(model, text, steer={"layer": L, "vector": v, "scale": s})`): s·v added to the residual stream
  entering block L at every position (Turner et al. 2023, activation addition); `steering_vector` builds v from a
  contrastive pair of texts;
- one patch (`trace(model, text, patch={"layer": L, "position": p, "source": clean_trace})`): the residual stream
  entering block L at position p (or several positions) replaced by another run's;
- `patch_sweep`: every (layer, position) patch from a clean run into a corrupted one, P(target) for each — the
  causal-tracing grid of Meng et al. 2022, TransformerLens's `get_act_patch_resid_pre` — in a few batched passes;
- `describe_sweep`: what the grid says, in words computed from it;
- the experiment pages' default texts for each model (`default_pair`, `steer_defaults`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from core.config import ModelConfig
from core.model import Edit, Recorder, Transformer
from core.tokenizer import token_ids

if TYPE_CHECKING:
    from core.trace import Trace

SITES = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")  # what a patch may copy, per block
SWEEP_BATCH_TOKENS = 4096  # tokens per forward pass of a sweep: batch rows × T


# The experiment pages' default texts, per model (checked on each offline model); a model not listed gets
# DEFAULTS_FOR's. "patch": two sentences of the same token count that differ in one word, where the clean one makes
# a token likely and the corrupted one does not (SmolLM2 P(" Paris") 0.77 vs 0.001; TinyStories-1M P(" ball") 0.45
# vs 0.01). "steer": a contrastive pair that moves the next token visibly (SmolLM2: issue 30's measurement;
# TinyStories-1M: " happy"/" proud" against " scared"/" sad").
DEFAULTS_FOR = "smollm2-135m"
DEFAULT_PAIRS = {
    "patch": {
        "smollm2-135m": ("The capital of France is", "The capital of Italy is"),
        "tiny-stories-1m": ("Lily found a ball. She picked up the", "Lily found a doll. She picked up the"),
    },
    "steer": {
        "smollm2-135m": ("I love this. It is wonderful and I am so happy", "I hate this. It is awful and I am so angry"),
        "tiny-stories-1m": ("She was happy and smiled", "She was sad and cried"),
    },
}
# Steering's prompt, block (as a fraction of the depth) and strength for that pair.
STEER_SETTINGS = {
    "smollm2-135m": ("I watched the movie last night. Honestly, it was", 0.2, 0.75),
    "tiny-stories-1m": ("When Lily saw the dog, she was very", 0.5, 1.0),
}


def default_pair(model_name: str, kind: str) -> tuple[str, str]:
    """The default sentence pair of an experiment ("patch": clean, corrupted; "steer": positive, negative) for a
    model."""
    pairs = DEFAULT_PAIRS[kind]
    return pairs.get(model_name, pairs[DEFAULTS_FOR])


def steer_defaults(model_name: str, n_layers: int) -> tuple[str, str, str, int, float]:
    """Steering's defaults for a model of n_layers blocks: (positive, negative, prompt, block, strength)."""
    positive, negative = default_pair(model_name, "steer")
    prompt, depth, scale = STEER_SETTINGS.get(model_name, STEER_SETTINGS[DEFAULTS_FOR])
    return positive, negative, prompt, min(n_layers - 1, round(depth * n_layers)), scale


def site_name(layer: int, site: str = "resid_pre") -> str:
    """The recorded name of a block's residual-stream tensor: site_name(3) == "blocks.3.hook_resid_pre"."""
    if site not in SITES:
        raise ValueError(f"a patch site is one of {SITES}, not {site!r}")
    return f"blocks.{layer}.hook_{site}"


def _layer(cfg: ModelConfig, spec: dict, what: str) -> int:
    layer = spec.get("layer")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < cfg.n_layers:
        raise ValueError(f"{what}: layer is an integer from 0 to {cfg.n_layers - 1} ({cfg.name} has {cfg.n_layers} "
                         f"blocks), not {layer!r}")
    return layer


def _keys(spec, allowed: set[str], required: set[str], what: str, example: str) -> None:
    if not isinstance(spec, dict) or set(spec) - allowed or required - set(spec):
        raise ValueError(f"{what} takes a dict like {example}, not {spec!r}")


def steer_edits(cfg: ModelConfig, steer: dict | None) -> list[Edit]:
    """{"layer": L, "vector": v (d_model,), "scale": s} → the Edit adding s·v to the residual stream entering block L
    at every position (scale defaults to 1; scale 0 leaves every number as it was)."""
    if steer is None:
        return []
    what = "steer"
    _keys(steer, {"layer", "vector", "scale"}, {"layer", "vector"}, what,
          '{"layer": 6, "vector": v, "scale": 0.75}')
    layer = _layer(cfg, steer, what)
    vector = torch.as_tensor(steer["vector"], dtype=torch.float32)
    if vector.shape != (cfg.d_model,):
        raise ValueError(f"steer: the vector has {cfg.d_model} numbers (d_model), not shape {tuple(vector.shape)}")
    scale = steer.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"steer: scale is a finite number, not {scale!r}")
    if not torch.isfinite(vector).all():
        raise ValueError("steer: the vector has NaN or infinite entries")
    return [Edit(site_name(layer), "add", value=float(scale) * vector)]


def _positions(spec: dict, n_tokens: int, what: str) -> list[int]:
    raw = spec["position"]
    raw = [raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
    try:
        positions = [int(p) for p in raw if not isinstance(p, bool)]
    except (TypeError, ValueError):
        positions = []
    if not positions or len(positions) != len(raw) or not all(-n_tokens <= p < n_tokens for p in positions):
        raise ValueError(f"{what}: position is a token index from 0 to {n_tokens - 1} (or a list of them), not {raw!r}")
    return sorted({p % n_tokens for p in positions})


def patch_edits(cfg: ModelConfig, n_tokens: int, patch: dict | Sequence[dict] | None) -> list[Edit]:
    """{"layer": L, "position": p or [p, …], "source": a Trace or a tensor, "site": "resid_pre"} → the Edit replacing
    the residual stream entering block L (or another SITES tensor of that block) at those positions by the source's.

    source: a Trace of another text (it must have recorded that tensor: the default record holds every resid_pre),
    a (T_source, d) tensor of that stream, or one (d,) vector put at every patched position. A list of such dicts
    patches several places in the same call."""
    if patch is None:
        return []
    if isinstance(patch, (list, tuple)):
        return [edit for one in patch for edit in patch_edits(cfg, n_tokens, one)]
    what = "patch"
    _keys(patch, {"layer", "position", "source", "site"}, {"layer", "position", "source"}, what,
          '{"layer": 0, "position": 3, "source": clean_trace}')
    layer = _layer(cfg, patch, what)
    site = patch.get("site", "resid_pre")
    name = site_name(layer, site)
    positions = _positions(patch, n_tokens, what)
    source = patch["source"]
    if not isinstance(source, torch.Tensor):
        if not hasattr(source, "resid_pre"):
            raise ValueError(f"patch: source is a Trace or a tensor, not {type(source).__name__}")
        if source.config.d_model != cfg.d_model or source.config.n_layers != cfg.n_layers:
            raise ValueError(f"patch: the source trace comes from {source.config.name}, not a model shaped like "
                             f"{cfg.name}")
        try:
            source = getattr(source, site)(layer)  # (T_source, d)
        except KeyError:
            raise ValueError(f"patch: the source trace did not record {name}; trace it with that name in `record`") \
                from None
    source = source.detach().float().cpu()
    if source.dim() == 1:
        source = source.expand(max(positions) + 1, -1)  # the same vector at every patched position
    if source.dim() != 2 or source.shape[1] != cfg.d_model:
        raise ValueError(f"patch: source is (tokens, {cfg.d_model}) or ({cfg.d_model},), not {tuple(source.shape)}")
    if max(positions) >= source.shape[0]:
        raise ValueError(f"patch: the source has {source.shape[0]} tokens, no position {max(positions)}")
    if not torch.isfinite(source[positions]).all():
        raise ValueError("patch: the source has NaN or infinite entries")
    value = torch.zeros(1, n_tokens, cfg.d_model)  # (1, T, d): only the patched positions are read
    value[0, positions] = source[positions]
    where = torch.zeros(1, n_tokens, dtype=torch.bool)
    where[0, positions] = True
    return [Edit(name, "set", value=value, where=where)]


def edits_for(cfg: ModelConfig, n_tokens: int, steer: dict | None = None,
              patch: dict | Sequence[dict] | None = None) -> list[Edit]:
    """The Edits of trace()'s `steer` and `patch` specs for an input of n_tokens tokens (ValueError on a bad spec)."""
    return steer_edits(cfg, steer) + patch_edits(cfg, n_tokens, patch)


def steering_vector(positive: Trace, negative: Trace, layer: int, position: int = -1) -> torch.Tensor:
    """(d,): the residual stream entering block `layer` at `position` (default the last token) of the positive text
    minus the negative one's — the direction from one meaning to the other (both traces must have recorded it)."""
    return positive.resid_pre(layer)[position] - negative.resid_pre(layer)[position]


def target_id(model: Transformer, target: str | int) -> int:
    """A target token given as its id or as a text that is exactly one token (ValueError otherwise)."""
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < model.config.vocab_size:
            raise ValueError(f"target id {target} is outside the vocabulary (0..{model.config.vocab_size - 1})")
        return target
    if not isinstance(target, str) or model.tokenizer is None:
        raise ValueError(f"the target is a token id or (with a tokenizer) a one-token text, not {target!r}")
    ids = model.tokenizer.encode(target)
    if len(ids) != 1:
        raise ValueError(f"the target {target!r} is {len(ids)} tokens for this model; give a text that is one token "
                         "(often with its leading space, e.g. ' Paris')")
    return ids[0]


@torch.inference_mode()
def patch_sweep(model: Transformer, clean: str | Iterable[int], corrupt: str | Iterable[int], target: str | int,
                batch_tokens: int = SWEEP_BATCH_TOKENS) -> torch.Tensor:
    """(n_layers, T): P(target) at the last position of the corrupted text when the residual stream entering block l
    at position p is copied from the clean run — every (l, p) at once.

    The two texts must have the same number of tokens (position p is copied to position p). One pass records both
    runs' streams; then each patched run is one row of a batch, its own position marked in the Edit's `where`, so
    the sweep takes ⌈rows × T / batch_tokens⌉ passes instead of n_layers × T. A cell where the clean and corrupted
    streams are already equal (a causal model's positions before the first differing token) is a patch that changes
    nothing: it gets the corrupted run's probability without a pass of its own."""

    cfg = model.config
    if not cfg.lm_head:
        raise ValueError(f"{cfg.name} is an encoder: it predicts no next token, so there is no probability to restore")
    clean_ids, corrupt_ids = token_ids(model, clean), token_ids(model, corrupt)
    T = len(clean_ids)
    if T != len(corrupt_ids) or T == 0:
        raise ValueError(f"the clean and corrupted texts are {T} and {len(corrupt_ids)} tokens: patching copies "
                         "position p into position p, so they need the same number of tokens (and at least one)")
    if T > cfg.n_ctx:
        raise ValueError(f"{T} tokens exceed the context length {cfg.n_ctx}")
    target = target_id(model, target)
    names = [site_name(layer) for layer in range(cfg.n_layers)]
    device = model.device
    rec = Recorder(names)
    logits, _ = model(torch.tensor([clean_ids, corrupt_ids], device=device), rec=rec, kv_cache=False)  # (2, V)
    clean_p, corrupt_p = logits.float().softmax(-1)[:, target].tolist()
    streams = torch.stack([rec.store[n] for n in names])  # (L, 2, T, d)
    grid = torch.full((cfg.n_layers, T), corrupt_p)
    todo = [(layer, p) for layer in range(cfg.n_layers) for p in range(T)
            if not torch.equal(streams[layer, 0, p], streams[layer, 1, p])]
    rows = max(1, batch_tokens // T)
    idx = torch.tensor([corrupt_ids], device=device)  # (1, T)
    for start in range(0, len(todo), rows):
        chunk = todo[start : start + rows]
        where: dict[int, torch.Tensor] = {}
        for row, (layer, p) in enumerate(chunk):
            where.setdefault(layer, torch.zeros(len(chunk), T, dtype=torch.bool))[row, p] = True
        edits = [Edit(names[layer], "set", value=streams[layer, :1], where=mask) for layer, mask in where.items()]
        out, _ = model(idx.expand(len(chunk), T), rec=Recorder((), edits=edits), kv_cache=False)  # (B, V)
        probs = out.float().softmax(-1)[:, target].cpu()  # (B,)
        grid[[lay for lay, _ in chunk], [p for _, p in chunk]] = probs
    return grid


@dataclass(frozen=True)
class SweepReading:
    """What a patching grid says: the probabilities it is read against, the positions that restore most of the
    target's probability at each layer, and those findings in sentences."""

    clean_p: float
    corrupt_p: float
    restoring: list[list[int]]  # per layer: positions whose patch restores at least half of the gap
    sentences: list[str]


def restored_fraction(grid: torch.Tensor, clean_p: float, corrupt_p: float) -> torch.Tensor:
    """(L, T): how much of the gap between the corrupted and the clean probability each patch closes (1 = all)."""
    return (grid - corrupt_p) / (clean_p - corrupt_p)


def _layer_span(a: int, b: int) -> str:
    return f"Layer {a}" if a == b else f"Layers {a}–{b}"


def describe_sweep(grid: torch.Tensor, tokens: Sequence[str], clean_p: float, corrupt_p: float,
                   target: str) -> SweepReading:
    """Where the information that makes the target likely sits, layer by layer, and where it moves, read from a
    patch_sweep grid: runs of consecutive layers whose restoring positions (≥ half the gap) are the same. `tokens`
    are the clean sentence's (what a patch copies in)."""
    grid = torch.as_tensor(grid)  # a cached copy may come as numpy
    L, T = grid.shape
    gap = clean_p - corrupt_p
    if abs(gap) < 0.02:
        sentence = (f"The two sentences give “{target}” almost the same probability ({clean_p:.1%} and "
                    f"{corrupt_p:.1%}): there is nothing for a patch to restore. Choose a target the clean sentence "
                    "predicts and the corrupted one does not.")
        return SweepReading(clean_p, corrupt_p, [[] for _ in range(L)], [sentence])
    frac = restored_fraction(grid, clean_p, corrupt_p)
    restoring = [[p for p in range(T) if frac[layer, p] >= 0.5] for layer in range(L)]
    quote = [f"“{t}” (position {p})" for p, t in enumerate(tokens)]
    sentences = [f"“{target}” has probability {clean_p:.1%} after the clean sentence and {corrupt_p:.1%} after the "
                 "corrupted one; a cell shows it after one patch."]
    runs: list[tuple[int, int, list[int]]] = []
    for layer, positions in enumerate(restoring):
        if runs and runs[-1][2] == positions:
            runs[-1] = (runs[-1][0], layer, positions)
        else:
            runs.append((layer, layer, positions))
    for a, b, positions in runs[:8]:
        if not positions:
            best = frac[a : b + 1].max(dim=0)
            p = int(best.values.argmax())
            sentences.append(f"{_layer_span(a, b)}: no single position restores half of it (the best, "
                             f"{quote[p]}, up to {float(best.values[p]):.0%}) — the information is spread over "
                             "several tokens there.")
            continue
        best = frac[a : b + 1, positions].max().item()
        low = frac[a : b + 1, positions].min().item()
        what = " and ".join(quote[p] for p in positions)
        level = f"{best:.0%}" if abs(best - low) < 0.05 else f"{low:.0%}–{best:.0%}"
        sentences.append(f"{_layer_span(a, b)}: patching {what} restores {level} of it.")
    if len(runs) > 8:
        sentences.append(f"(… {len(runs) - 8} more changes further up, in the grid.)")
    first, last = restoring[0], restoring[-1]
    if first and last and first != last and T - 1 in last:
        moved = next(layer for layer in range(L) if T - 1 in restoring[layer])
        sentences.append(f"So the information starts at {' and '.join(quote[p] for p in first)} and has been moved to "
                         f"the last position by layer {moved}: attention carried it there, where the prediction is "
                         "made.")
    elif first and first == last:
        sentences.append(f"The information stays at {' and '.join(quote[p] for p in first)} through every layer.")
    return SweepReading(clean_p, corrupt_p, restoring, sentences)
