"""The model's norms (LayerNorm, RMSNorm) applied step by step to one token, with the model's own gain, bias and ε."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.model import Transformer
from core.trace import Trace, grow, hook


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



def norm_record(cfg, where: str) -> tuple[str, ...]:
    """What `norm_steps` reads for the norm `where`: the tensors that add up to its input (one block's at most)."""
    if where in ("ln_embed", "ln_final"):
        return ("hook_embed", "hook_pos_embed", "hook_token_type_embed", hook(cfg.n_layers - 1, "hook_resid_post"))
    layer, which = int(where.split(".")[1]), where.split(".")[2]
    if which == "ln1":
        return (hook(layer, "hook_resid_pre"),) + ((hook(layer, "hook_attn_out"),) if cfg.post_norm else ())
    return (hook(layer, "hook_resid_mid"),) + ((hook(layer, "hook_mlp_out"),) if cfg.post_norm else ())


def norm_steps(model: Transformer, tr: Trace, where: str, position: int) -> NormSteps:
    """The norm `where` (one of norm_names) applied to the token at `position`, step by step, with the model's own
    gain, bias and ε. `after` equals what the model computed there. `tr` grows (a copy) by what that norm reads:
    one block run again at most."""
    cfg = model.config
    if where not in norm_names(cfg):
        raise ValueError(f"{where!r} is not a norm of {cfg.name}: {norm_names(cfg)[:4]} …")
    tr = grow(model, tr, norm_record(cfg, where))
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
