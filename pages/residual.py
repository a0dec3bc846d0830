"""The residual stream and the norms: direct logit attribution (which parts of the model push the predicted token up
or down, as a waterfall, and per head) and one token's vector through a LayerNorm or RMSNorm, step by step."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.interpret.norms import norm_label, norm_names, norm_steps
from pages.common import cache, chart, figures, sidebar, texts, widgets
from pages.common.html import visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("➕ Residual stream & norms")
widgets.need_text(ctx.text)
tr = ctx.trace()
if not cfg.lm_head or cfg.post_norm:
    st.subheader("Direct logit attribution: not for this model")
    st.info(f"{cfg.name} is an encoder with no unembedding: there is no logit to split. It also normalises after "
            "every residual add (post-norm), so its stream is not a plain sum of what the layers added.", icon="ℹ️")
else:
    st.subheader("Who voted for the next token? Direct logit attribution")
    st.markdown(texts.attribution(cfg))
    top = tr.probs.topk(8).indices.tolist()
    token_id = widgets.choice("selectbox", "Token whose logit is split", "res.token", top, default=top[0],
                              format_func=lambda i: f"{name(i)} ({float(tr.probs[i]):.1%})")
    att = cache.attribution(ctx.model_name, ctx.device, ctx.text, token_id)
    readable = {k: att.label(k) for k in att}
    names = [att.label(k, short=True) for k in att]
    values = list(att.values())
    fig = go.Figure(go.Waterfall(x=[*names, "= logit"], y=[*values, att.logit], hovertext=[*readable.values(), "logit"],
                                 measure=["relative"] * len(values) + ["total"],
                                 increasing=dict(marker_color=figures.POSITIVE), decreasing=dict(marker_color=figures.NEGATIVE),
                                 totals=dict(marker_color="#111827")))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
                      title=f"The logit of “{name(token_id)}” ({att.logit:.2f}), part by part",
                      xaxis=dict(tickangle=-90, type="category", tickmode="array", tickvals=[*names, "= logit"],
                                 tickfont=dict(size=10)), yaxis_title="share of the logit")
    chart.show(fig, key="res.waterfall")
    ranked = sorted(att.items(), key=lambda kv: -abs(kv[1]))[:3]
    st.caption(f"Blue raises the logit, red lowers it; the bars add up to the model's logit {att.logit:.3f} "
               f"(sum of parts {sum(values):.3f}; the final norm divided this token's stream by {att.scale:.3f}). "
               "Largest parts: " + ", ".join(f"{readable[k]} {v:+.2f}" for k, v in ranked) + ".")
    heads = att.heads.numpy()
    fig = figures.heatmap(heads, x=[f"head {h}" for h in range(cfg.n_heads)],
                          y=[f"layer {i}" for i in range(cfg.n_layers)], title="Each attention head's share",
                          height=max(280, 22 * cfg.n_layers + 120))  # figures.DIVERGING: blue raises it
    chart.show(fig, key="res.heads")
    layer, head = np.unravel_index(np.abs(heads).argmax(), heads.shape)
    st.caption(f"The head with the largest direct share is layer {layer}, head {head} ({heads[layer, head]:+.2f}). A "
               f"layer's heads{' plus its output bias' if cfg.bias else ''} add up to its attention bar above. Switch a head off on the "
               "Attention or Next token page to see its whole effect, direct and through later layers.")
    widgets.download_csv({"part": list(att), "share": values}, f"attribution_{cfg.name}.csv")

st.subheader(f"{texts.NORM[cfg.norm]}, one token step by step")
st.markdown(texts.layer_norm(cfg))
c1, c2 = st.columns(2)
where = widgets.choice("selectbox", "Norm", "res.norm", norm_names(cfg), default=norm_names(cfg)[0], where=c1,
                       format_func=lambda n: norm_label(cfg, n))
pos = widgets.choice("selectbox", "Token", "res.pos", list(range(tr.n_tokens)), default=tr.n_tokens - 1, where=c2,
                     format_func=lambda i: f"{i}: {visible(tr.tokens[i])}")
steps = norm_steps(model, tr, where, pos)  # the text's trace, grown (a copy) by that norm's block at most
c = st.columns(4)
c[0].metric("Mean of the input" if steps.mean is not None else "Mean (not subtracted)",
            f"{steps.mean if steps.mean is not None else float(steps.before.mean()):.3f}")
c[1].metric("Divided by" + (" √(var + ε)" if steps.kind == "LayerNorm" else " √(mean(x²) + ε)"), f"{steps.spread:.3f}")
c[2].metric("Length before", f"{float(steps.before.norm()):.2f}")
c[3].metric("Length after", f"{float(steps.after.norm()):.2f}")
series = {"input": steps.before, "normalised": steps.normalized, "× gain": steps.scaled}
if steps.bias is not None:
    series["+ bias = output"] = steps.after
fig = make_subplots(rows=1, cols=len(series), subplot_titles=list(series), shared_yaxes=False)
for col, (label, values) in enumerate(series.items(), start=1):
    fig.add_trace(go.Bar(y=values.numpy(), name=label, marker_color=["#64748b", "#2563eb", "#f59e0b", "#dc2626"][col - 1],
                         showlegend=False), row=1, col=col)
    fig.update_xaxes(title_text=f"dimension 0–{cfg.d_model - 1}", row=1, col=col)
fig.update_layout(height=320, margin=dict(l=10, r=10, t=60, b=10), bargap=0,
                  title=f"The {cfg.d_model} numbers of token {pos} at each step (each panel its own scale)")
chart.show(fig, key="res.norm.fig")
first = min(8, cfg.d_model)
rows = {"step": list(series)} | {f"dim {j}": [f"{float(v[j]):.3f}" for v in series.values()] for j in range(first)}
st.dataframe(rows, hide_index=True)
gain = steps.gain
st.caption(f"The first {first} of {cfg.d_model} dimensions. The learned gain ranges from {float(gain.min()):.2f} to "
           f"{float(gain.max()):.2f} (ε = {steps.eps:g}); the output equals what the model computed here.")
