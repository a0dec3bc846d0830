"""The feed-forward layer: up-projection, activation (with this token's hidden units on the curve), down-projection,
how many units fire, the top units for the text, and one unit in detail (its tokens here, what it promotes in the
vocabulary, its strongest activations on sentences the project ships)."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from core.interpret.neurons import activation, activation_name, firing, neuron_logit_effect, top_neurons
from core.trace import mlp_record
from pages.common import cache, chart, figures, sidebar, texts, widgets
from pages.common.html import visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("🧠 Feed-forward layer")
st.markdown(texts.feed_forward(cfg))
widgets.need_text(ctx.text)
c1, c2 = st.columns(2)
layer = widgets.slider("Layer", "ff.layer", 0, cfg.n_layers - 1, 0, clamp="for this model", where=c1)
tr = ctx.trace(record=mlp_record(layer))
T = tr.n_tokens
widgets.reset_on_change("ff.token", ctx.text, T - 1)
pos = widgets.choice("selectbox", "Token", "ff.token", list(range(T)), default=T - 1, where=c2,
                     format_func=lambda i: f"{i}: {visible(tr.tokens[i])}")

pre, post = tr.mlp_pre(layer), tr.mlp_post(layer)  # (T, m)
x_in, x_out = tr.mlp_in(layer)[pos], tr.mlp_out(layer)[pos]
fires = firing(tr, layer)
st.subheader(f"Layer {layer}, token “{visible(tr.tokens[pos])}”: {cfg.d_model} → {cfg.mlp_dim} → {cfg.d_model}")
c = st.columns(4)
c[0].metric("Input length", f"{float(x_in.norm()):.2f}", help="the normalised vector the layer reads")
c[1].metric("Hidden units", f"{cfg.mlp_dim:,}", help="SwiGLU: each unit has a gate and an up branch, two "
            "projections of the input" if cfg.mlp == "swiglu" else "the up-projection's outputs")
c[2].metric("Units firing", f"{int((pre[pos] > 0).sum()):,} ({float(fires[pos]):.0%})",
            help="input to the activation above zero" + (" (SwiGLU: the gate)" if cfg.mlp == "swiglu" else ""))
c[3].metric("Output length (added to the stream)", f"{float(x_out.norm()):.2f}")

xs = torch.linspace(float(pre.min()) - 0.5, float(pre.max()) + 0.5, 300)
curve = activation(cfg, xs)
dots = pre[pos]
fig = go.Figure([go.Scatter(x=xs.tolist(), y=curve.tolist(), mode="lines", name=activation_name(cfg),
                            line=dict(color="#111827")),
                 go.Scatter(x=dots.tolist(), y=activation(cfg, dots).tolist(), mode="markers",
                            name=f"this token's {cfg.mlp_dim:,} units", marker=dict(size=5, color="#2563eb",
                                                                                  opacity=0.5))])
fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=1.12),
                  xaxis_title="input to the activation" + (" (the gate)" if cfg.mlp == "swiglu" else ""),
                  yaxis_title="activation")
chart.show(fig, key="ff.curve")
if cfg.mlp == "swiglu":
    up = tr.mlp_pre_linear(layer)[pos]
    st.caption(f"Each dot is one of the {cfg.mlp_dim:,} units: its gate on the curve of SiLU(x) = x·sigmoid(x). "
               "SiLU is not yet the unit's value: SwiGLU multiplies it by the unit's **up** branch, a second "
               f"projection of the same input. For this token the up branch ranges from {float(up.min()):.2f} to "
               f"{float(up.max()):.2f}, so a unit with an open gate can still end up negative or near zero.")
else:
    st.caption(f"Each dot is one of the {cfg.mlp_dim:,} hidden units of this token: its input from the "
               "up-projection (x) and what GELU makes of it (y). Positive inputs pass almost unchanged; negative "
               "ones are squashed to nearly zero (the dip reaches −0.17), which is how the layer picks which units "
               "speak for this token.")

st.subheader("The most active units for your text")
k = min(20, cfg.mlp_dim)
top = top_neurons(tr, layer, k)
values = post[:, top].numpy()
fig = figures.heatmap(values.T, x=figures.labels(tr.tokens), y=[f"unit {n}" for n in top], colorscale=figures.DIVERGING,
                      title=f"Activation of the {k} units with the largest |activation| in the text (after its first token)",
                      height=max(320, 22 * k + 140))
chart.show(fig, key="ff.top")
st.caption(f"{figures.SIGNED} activation (after the activation" +
           (", i.e. SiLU(gate) × up)." if cfg.mlp == "swiglu" else ")."))
st.markdown("Share of units firing at each token: " + " · ".join(
    f"{visible(t)} {float(f):.0%}" for t, f in list(zip(tr.tokens, fires))[-16:]))

st.subheader("One unit")
neuron = widgets.choice("selectbox", "Unit", "ff.unit", top, default=top[0],
                        format_func=lambda n: f"unit {n}")
acts = post[:, neuron].numpy()
bars = go.Figure(go.Bar(x=figures.labels(tr.tokens), y=acts,
                        marker_color=np.where(acts >= 0, figures.POSITIVE, figures.NEGATIVE)))
bars.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), yaxis_title="activation",
                   title=f"Unit {neuron} of layer {layer} on each token of your text", xaxis=dict(type="category"))
chart.show(bars, key="ff.unit.bars")
left, right = st.columns(2)
with left:
    st.markdown(f"**Where unit {neuron} fires most on sentences Glassbox ships**")
    examples = cache.neuron_examples(ctx.model_name, ctx.device)
    found = examples.top(layer, neuron, 8)
    st.dataframe({"activation": [f"{v:+.3f}" for _, _, v in found],
                  "before it": ["".join(examples.sentences[s][max(0, p - 8):p]) or "(start of text)"
                                for s, p, _ in found],
                  "token": [examples.sentences[s][p] for s, p, _ in found]}, hide_index=True, width="stretch")
    st.caption(f"Fifty sentences written for this app (stories, facts, numbers, code), {examples.acts.shape[1]:,} "
               "tokens, each read on its own; the rows are the unit's largest activations by size (either sign), "
               "with up to eight tokens before each.")
with right:
    if cfg.lm_head and not cfg.post_norm:
        promoted, suppressed = neuron_logit_effect(model, layer, neuron, k=8)
        st.markdown(f"**What unit {neuron}'s output pushes the prediction towards**")
        st.markdown("Promotes: " + ", ".join(f"`{name(i)}`" for i, _ in promoted))
        st.markdown("Suppresses: " + ", ".join(f"`{name(i)}`" for i, _ in suppressed))
        bytes_said = texts.byte_tokens(tok, [i for i, _ in promoted + suppressed], name)
        if bytes_said:
            st.caption(bytes_said)
        st.caption("When the unit is positive it adds its column of the down-projection to the stream. Sent "
                   "straight through the final norm's gain and the unembedding, that column raises the logits of "
                   "the first tokens and lowers the second. Direct effect only: the layers after this one read the "
                   f"same column and may change it{' — and this is layer ' + str(layer) + ' of ' + str(cfg.n_layers) if layer < cfg.n_layers - 2 else ''}.")
    else:
        st.info(f"{cfg.name} has no unembedding, so a unit's output cannot be read as tokens it promotes: it only "
                "moves the vector the encoder outputs.", icon="ℹ️")
widgets.download_csv({"token": tr.tokens, **{f"unit {n}": post[:, n].numpy() for n in top}},
                     f"feed_forward_{cfg.name}_layer{layer}.csv")
