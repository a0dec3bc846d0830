"""'Switch it off': the same text with some attention heads or MLP layers zero-ablated for one forward pass, next to
the untouched model. Drawn by the Attention and Next token pages; the shared model is never modified."""

from __future__ import annotations

import streamlit as st

from pages.common import cache, chart, figures
from pages.common.html import visible


def describe(heads: list[tuple[int, int]], mlps: list[int]) -> str:
    parts = [f"layer {lay} head {h}" for lay, h in heads] + [f"the feed-forward layer of layer {m}" for m in mlps]
    return ", ".join(parts)


def show(ctx, heads: list[tuple[int, int]], mlps: list[int], key: str) -> None:
    """Before/after for the text in the sidebar: the next-token distribution (decoders) or how much each token's
    output vector moved (encoders)."""
    if not heads and not mlps:
        return
    model = ctx.model
    cfg, tok = model.config, model.tokenizer
    what = describe(heads, mlps)
    if not cfg.lm_head:
        cosine = cache.output_change(ctx.model_name, ctx.device, ctx.text, tuple(heads), tuple(mlps)).numpy()
        tr = ctx.trace()
        fig = figures.grouped_bars(figures.labels(tr.tokens), {"cosine(before, after)": list(cosine)},
                                   title=f"How much each token's output vector changed with {what} off",
                                   ytitle="cosine similarity (1 = unchanged)")
        chart.show(fig, key=key)
        st.caption(f"{cfg.name} has no next-token output, so the effect is measured on what it does output: each "
                   f"token's final vector. Lowest similarity {cosine.min():.3f} (token "
                   f"{int(cosine.argmin())}: {visible(tr.tokens[int(cosine.argmin())])}).")
        return
    before = ctx.trace().probs
    after = cache.ablated(ctx.model_name, ctx.device, ctx.text, tuple(heads), tuple(mlps)).probs
    shown = list(dict.fromkeys(before.topk(8).indices.tolist() + after.topk(4).indices.tolist()))
    names = [visible(tok.display(i)) for i in shown]
    fig = figures.grouped_bars(names, {"model as trained": before[shown].tolist(),
                                       f"with {what} switched off": after[shown].tolist()},
                               title="Next-token probabilities, before and after", ytitle="probability")
    chart.show(fig, key=key)
    top_b, top_a = int(before.argmax()), int(after.argmax())
    moved = 0.5 * float((before - after).abs().sum())
    same = "stays on top" if top_b == top_a else f"changes to {visible(tok.display(top_a))} ({float(after[top_a]):.1%})"
    st.caption(f"Switched off = its output set to zero for this one pass (the rest of the model, and the shared "
               f"weights, unchanged). The top token {visible(tok.display(top_b))} ({float(before[top_b]):.1%} → "
               f"{float(after[top_b]):.1%}) {same}; {moved:.1%} of the probability moved (total variation distance).")
