"""Direct logit attribution: each component's share of one token's logit at the last position."""

from __future__ import annotations

import math

import torch

from core.model import Transformer
from core.trace import Trace, grow


def require_sum_of_parts(model: Transformer, what: str) -> None:
    """A clear ValueError unless `model` has logits and a residual stream that is the sum of its parts (`what`: the
    analysis that needs both, for the message)."""
    cfg = model.config
    if not cfg.lm_head:
        raise ValueError(f"{cfg.name} is an encoder with no unembedding: it gives no logits, so no {what}")
    if cfg.post_norm:
        raise ValueError(f"{cfg.name} normalises inside the residual stream (post-norm), so the stream is not a sum "
                         f"of its parts and has no {what}")


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
    require_sum_of_parts(model, "logit attribution")
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
    w = model.unembedding[token_id].double().cpu()  # (d,)
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
