"""Information flow: how much each part of the model wrote into the residual stream at each position, as a graph from
the input tokens through every block's attention (per key token and head) and feed-forward block to one position's
final stream — the contribution graph of Meta's LLM Transparency Tool (Ferrando & Voita 2024, "Information flow
routes"), read from ONE trace grown with what it needs (`flow_record`).

Every stream the model computes is a sum of parts. After block l's attention, position t holds

    resid_mid[t] = resid_pre[t] + Σ_k Σ_h P_h[t, k] · v_h[k] · W_O,h + b_O

one part for the residual path, one per (key token k, head h), one constant (the output bias); after its
feed-forward block, resid_post[t] = resid_mid[t] + mlp_out[t]. A post-norm model (BERT) normalises each sum:
LayerNorm is linear once its per-token mean and spread are fixed, so each part is centred and divided by the sum's
spread, times γ, and β joins the constant (Kobayashi et al. 2021) — the parts then add up to the stream it recorded.

A part's share of a whole y is its proximity max(0, ‖y‖₁ − ‖y − x‖₁) divided by the sum over the parts (LLM-TT's
measure): a part pointing along the whole gets a large share, one pointing away gets none, and the shares of one
stream add up to 1. (A projection x·y/‖y‖² adds up to 1 too but goes negative when parts cancel, which no edge
width can show; a part's length alone ignores its direction.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.model import Transformer
from core.trace import Trace, hook, layer_pattern

QUERY_CHUNK_FLOATS = 8_000_000  # floats per (queries, keys, heads, d) slab: 32 MB


def flow_record(post_norm: bool = False) -> tuple[str, ...]:
    """What the flow needs beyond the default trace: every block's values, the stream after its attention and what
    its feed-forward block adds (a post-norm model: what its attention adds too, before the norm)."""
    names = ("attn.hook_v", "hook_resid_mid", "hook_mlp_out") + (("hook_attn_out",) if post_norm else ())
    return ("blocks.0.hook_resid_pre", "blocks.*.hook_resid_post", *(f"blocks.*.{n}" for n in names))


@dataclass(frozen=True)
class Parts:
    """One stream (T, d) as the sum of its parts: the residual path + `parts` + the constant."""

    whole: torch.Tensor  # (T, d) the stream the model recorded
    residual: torch.Tensor  # (T, d)
    parts: torch.Tensor  # (T, d) what the feed-forward block added
    constant: torch.Tensor | None  # (T, d) biases (and a norm's β); None when the model has none


@dataclass(frozen=True)
class AttentionParts:
    """The stream after one block's attention as the sum of the residual path, one part per (key token, head) and the
    constant. The (T, T, nh, d) parts are made a few queries at a time (`heads`): at 96 tokens on SmolLM2 all of them
    would be 190 MB."""

    whole: torch.Tensor  # (T, d)
    residual: torch.Tensor  # (T, d)
    constant: torch.Tensor | None  # (T, d)
    written: torch.Tensor  # (T, nh, d) what head h writes per unit of attention to key k (post-norm: centred, × γ)
    pattern: torch.Tensor  # (nh, T, T) [head, query, key]
    spread: torch.Tensor | None  # (T,) post-norm: the norm divides query t's parts by this
    causal: bool  # a query's parts from later keys are zero

    def heads(self, queries: slice = slice(None), keys: int | None = None) -> torch.Tensor:
        """(n, keys, nh, d) the parts at these queries from the first `keys` keys (all): [query, key, head, d]."""
        pattern = self.pattern[:, queries, :keys]  # (nh, n, keys)
        parts = pattern.permute(1, 2, 0)[..., None] * self.written[None, :keys]  # (n, keys, nh, d)
        return parts if self.spread is None else parts / self.spread[queries].view(-1, 1, 1, 1)


class _Norm:
    """A post-norm model's norm applied to a sum, split linearly over its pieces: LayerNorm (or RMSNorm) is linear
    once the sum's spread is fixed, so each piece is centred (LayerNorm) and divided by the SUM's spread, times γ;
    β joins the constant. Read from copies of the weights: the shared model is never moved or changed."""

    def __init__(self, norm: torch.nn.Module, total: torch.Tensor):
        self.centre = isinstance(norm, torch.nn.LayerNorm)
        shifted = total - total.mean(-1, keepdim=True) if self.centre else total
        self.spread = shifted.pow(2).mean(-1).add(norm.eps).sqrt()  # (T,)
        self.gamma = norm.weight.detach().float().cpu() if norm.weight is not None else torch.ones(total.shape[-1])
        bias = getattr(norm, "bias", None)
        self.beta = bias.detach().float().cpu() if bias is not None else None

    def shape(self, x: torch.Tensor) -> torch.Tensor:
        """Centred (LayerNorm) and × γ: the linear part that does not depend on the sum."""
        return (x - x.mean(-1, keepdim=True) if self.centre else x) * self.gamma

    def piece(self, x: torch.Tensor) -> torch.Tensor:
        """(T, d) one piece of the sum as it comes out of the norm."""
        return self.shape(x) / self.spread[:, None]

    def constant(self, x: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        out = None if x is None else self.piece(x)
        if self.beta is not None:
            out = self.beta.expand_as(like).clone() if out is None else out + self.beta
        return out


@torch.no_grad()
def attention_parts(model: Transformer, tr: Trace, layer: int) -> AttentionParts:
    """The stream after block `layer`'s attention, split into the residual path, each (key token, head)'s part and
    the output bias, from the values `tr` recorded (flow_record) and the layer's pattern (core.trace.layer_pattern:
    recorded, or computed from the stream entering the layer)."""
    cfg = model.config
    nh, hs = cfg.n_heads, cfg.head_dim
    out = model.blocks[layer].attn.out
    v = tr[hook(layer, "attn.hook_v")].float()  # (T, nkv, hs)
    v = v[:, [cfg.kv_head(h) for h in range(nh)]]  # (T, nh, hs): each query head's key/value head
    w_o = out.weight.detach().float().cpu().view(cfg.d_model, nh, hs)  # (d, nh, hs)
    written = torch.einsum("khs,dhs->khd", v, w_o)  # (T, nh, d)
    residual = tr.resid_pre(layer).float()  # (T, d)
    bias = out.bias.detach().float().cpu().expand_as(residual).clone() if out.bias is not None else None
    spread = None
    if cfg.post_norm:
        norm = _Norm(model.blocks[layer].ln1, residual + tr[hook(layer, "hook_attn_out")].float())
        residual, bias, written, spread = norm.piece(residual), norm.constant(bias, residual), norm.shape(written), \
            norm.spread
    return AttentionParts(tr.resid_mid(layer).float(), residual, bias, written, layer_pattern(model, tr, layer), spread,
                          cfg.causal)


@torch.no_grad()
def mlp_parts(model: Transformer, tr: Trace, layer: int) -> Parts:
    """The stream leaving block `layer`, split into the residual path (the stream after its attention) and what its
    feed-forward block added (a post-norm model: both through its second norm, β the constant)."""
    residual, added = tr.resid_mid(layer).float(), tr.mlp_out(layer).float()  # (T, d)
    constant = None
    if model.config.post_norm:
        norm = _Norm(model.blocks[layer].ln2, residual + added)
        residual, added, constant = norm.piece(residual), norm.piece(added), norm.constant(None, residual)
    return Parts(tr.resid_post(layer).float(), residual, added, constant)


def proximity(whole: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """max(0, ‖whole‖₁ − ‖whole − part‖₁) over the last dim (broadcast): how much closer the part brings you to the
    whole (LLM-TT's measure before it is divided by the sum)."""
    return (whole.abs().sum(-1) - (whole - part).abs().sum(-1)).clamp(min=0)


def shares(whole: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
    """Each part's share of `whole` (…, d) (LLM-TT's measure): proximity max(0, ‖whole‖₁ − ‖whole − part‖₁), divided
    by the sum over the parts. parts: (n, …, d) → (n, …), adding up to 1 over n wherever any part points along the
    whole."""
    near = proximity(whole, parts)  # (n, …)
    return near / near.sum(0, keepdim=True).clamp(min=1e-12)


def _attention_shares(p: AttentionParts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(T, T, nh) per (query, key, head), (T,) residual, (T,) constant, a few queries at a time. A causal model's
    later keys hold exactly zero parts (share 0) and are not computed."""
    T, nh, d = p.written.shape
    heads = torch.zeros(T, T, nh)
    resid, const = torch.zeros(T), torch.zeros(T)
    step = max(1, QUERY_CHUNK_FLOATS // max(1, T * nh * d))
    for a in range(0, T, step):
        b = min(T, a + step)
        keys = b if p.causal else T
        whole = p.whole[a:b]  # (n, d)
        per = proximity(whole[:, None, None], p.heads(slice(a, b), keys))  # (n, keys, nh)
        r = proximity(whole, p.residual[a:b])
        c = proximity(whole, p.constant[a:b]) if p.constant is not None else torch.zeros(b - a)
        total = (per.sum((1, 2)) + r + c).clamp(min=1e-12)  # (n,)
        heads[a:b, :keys] = per / total[:, None, None]
        resid[a:b], const[a:b] = r / total, c / total
    return heads, resid, const


def _mlp_shares(p: Parts) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pieces = [p.parts[None], p.residual[None]] + ([p.constant[None]] if p.constant is not None else [])
    s = shares(p.whole, torch.cat(pieces))  # (2 [+ 1], T)
    return s[0], s[1], s[2] if p.constant is not None else torch.zeros(p.whole.shape[0])


@dataclass(frozen=True)
class Flow:
    """Every stream's parts' shares, for every block and position (each stream's shares add up to 1):

    attn[l, t, k, h]  head h's part from key token k in the stream at t after block l's attention
    attn_residual[l, t], attn_constant[l, t]  that stream's residual path and constant (biases)
    mlp[l, t], mlp_residual[l, t], mlp_constant[l, t]  the stream leaving block l: its feed-forward block's output,
    the residual path, the constant (a post-norm model's β)."""

    tokens: list[str]
    attn: torch.Tensor  # (L, T, T, nh)
    attn_residual: torch.Tensor  # (L, T)
    attn_constant: torch.Tensor  # (L, T)
    mlp: torch.Tensor  # (L, T)
    mlp_residual: torch.Tensor  # (L, T)
    mlp_constant: torch.Tensor  # (L, T)

    @property
    def n_layers(self) -> int:
        return self.attn.shape[0]

    @property
    def n_tokens(self) -> int:
        return self.attn.shape[1]

    def node_sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, T) the shares into each attention node and each feed-forward node, summed: 1 everywhere."""
        return (self.attn.sum((2, 3)) + self.attn_residual + self.attn_constant,
                self.mlp + self.mlp_residual + self.mlp_constant)

    def heads_into(self, position: int) -> torch.Tensor:
        """(L, nh) each head's share (over every key token) of the stream at `position` after each block's attention."""
        return self.attn[:, position].sum(1)

    def at_position(self, position: int) -> dict[str, torch.Tensor]:
        """Block by block at one position, (L,) each: the shares of the stream after the block's attention that come
        from the residual path, from attention to other tokens and to itself; the feed-forward block's share of the
        stream leaving the block."""
        own = self.attn[:, position, position].sum(-1)
        return {"residual path": self.attn_residual[:, position],
                "attention to other tokens": self.attn[:, position].sum((1, 2)) - own,
                "attention to itself": own, "feed-forward block": self.mlp[:, position]}


@torch.no_grad()
def contribution_flow(model: Transformer, tr: Trace) -> Flow:
    """The shares of every part in every stream of `tr`, which must hold `flow_record(post_norm)` (core.trace.grow
    adds it to a default trace without a new forward pass)."""
    layers = range(model.config.n_layers)
    attn = [_attention_shares(attention_parts(model, tr, layer)) for layer in layers]
    mlp = [_mlp_shares(mlp_parts(model, tr, layer)) for layer in layers]
    stack = lambda rows, i: torch.stack([r[i] for r in rows])  # noqa: E731
    return Flow(list(tr.tokens), stack(attn, 0), stack(attn, 1), stack(attn, 2), stack(mlp, 0), stack(mlp, 1),
                stack(mlp, 2))


@dataclass(frozen=True)
class Edge:
    """One edge of the graph. Nodes are (stage, layer, position): ("input", -1, t) the stream entering block 0,
    ("attn", l, t) the stream after block l's attention, ("ffn", l, t) the stream leaving block l."""

    kind: str  # "attention" (key → query through the heads), "residual" (the same position), "ffn" (through it)
    source: tuple[str, int, int]
    target: tuple[str, int, int]
    share: float  # the source part's share of the target stream
    heads: tuple[tuple[int, float], ...] = ()  # attention: (head, share), largest first


def _entering(layer: int, position: int) -> tuple[str, int, int]:
    return ("input", -1, position) if layer == 0 else ("ffn", layer - 1, position)


def routes(flow: Flow, position: int, threshold: float) -> list[Edge]:
    """The edges above `threshold` that lead to the final stream at `position`, walking down from it (LLM-TT's
    graph): an edge is kept when its share passes the threshold and its target is on such a route."""
    if not 0 <= position < flow.n_tokens:
        raise ValueError(f"position {position} is not in the text (0 to {flow.n_tokens - 1})")
    edges: list[Edge] = []
    todo, seen = [("ffn", flow.n_layers - 1, position)], set()
    while todo:
        node = todo.pop()
        if node in seen or node[0] == "input":
            continue
        seen.add(node)
        stage, layer, t = node
        if stage == "ffn":
            found = [Edge("ffn", ("attn", layer, t), node, float(flow.mlp[layer, t])),
                     Edge("residual", ("attn", layer, t), node, float(flow.mlp_residual[layer, t]))]
        else:
            found = [Edge("residual", _entering(layer, t), node, float(flow.attn_residual[layer, t]))]
            for k in range(flow.n_tokens):
                per_head = flow.attn[layer, t, k]
                total = float(per_head.sum())
                if total > threshold:
                    order = per_head.argsort(descending=True).tolist()
                    found.append(Edge("attention", _entering(layer, k), node, total,
                                      tuple((h, float(per_head[h])) for h in order if per_head[h] > 0.005)))
        for edge in found:
            if edge.share > threshold:
                edges.append(edge)
                todo.append(edge.source)
    return edges


def describe_flow(flow: Flow, position: int, threshold: float, tokens: list[str], prediction: str | None
                 ) -> list[str]:
    """What the graph at this threshold says, in sentences computed from it."""
    edges = routes(flow, position, threshold)
    reached = sorted({e.source[2] for e in edges if e.source[0] == "input"} | {position})
    what = f"the prediction of {prediction}" if prediction else f"the final vector of “{tokens[position]}”"
    said = [f"At threshold {threshold:.2f}, {len(edges)} edges lead to {what} (position {position}); they start at "
            f"{len(reached)} of the {flow.n_tokens} input tokens: "
            + ", ".join(f"“{tokens[t]}” ({t})" for t in reached[:12]) + (" …" if len(reached) > 12 else "") + "."]
    moves = [e for e in edges if e.kind == "attention" and e.source[2] != e.target[2]]
    if moves:
        top = max(moves, key=lambda e: e.share)
        heads = ", ".join(f"head {h} {w:.2f}" for h, w in top.heads[:2])
        said.append(f"The strongest move between positions: block {top.target[1]}'s attention brings "
                    f"“{tokens[top.source[2]]}” ({top.source[2]}) into “{tokens[top.target[2]]}” "
                    f"({top.target[2]}) with a share of {top.share:.2f} ({heads}).")
    else:
        said.append("No attention edge between two different positions passes this threshold: at this level the "
                    "followed stream is built at its own position. Lower the threshold to see what it reads.")
    here = flow.at_position(position)
    others = here["attention to other tokens"]
    said.append(f"At “{tokens[position]}” itself, the residual path keeps a median of "
                f"{float(here['residual path'].median()):.0%} of the stream through each block's attention")
    if flow.n_tokens > 1:
        layer = int(others.argmax())
        read = flow.attn[layer, position].sum(-1)
        read[position] = -1
        source = int(read.argmax())
        said[-1] += (f"; reading other tokens brings the most in block {layer} ({float(others[layer]):.0%}, most of it "
                     f"from “{tokens[source]}”).")
    else:
        said[-1] += "."
    ffn = here["feed-forward block"]
    passed = int((ffn > threshold).sum())
    layer = int(ffn.argmax())
    said.append(f"Its feed-forward blocks pass the threshold in {passed} of {flow.n_layers} blocks; the largest, in "
                f"block {layer}, makes up {float(ffn[layer]):.0%} of the stream leaving that block.")
    return said
