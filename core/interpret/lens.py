"""The forward pass summarised stage by stage (the stream's length, what each part added) and the logit lens on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.model import Transformer
from core.trace import Trace, grow, lens_tops

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
