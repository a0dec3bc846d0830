"""Steering: a vector from a contrastive pair of sentences added to the residual stream entering one block, at a
strength the learner chooses; the steered next-token distribution and a steered continuation beside the unsteered
ones, and the vector's length against the stream's."""

import streamlit as st

from core.interventions import steer_defaults
from pages.common import cache, chart, experiments, figures, sidebar, widgets
from pages.common.html import visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("🧲 Steering")
widgets.need_a_decoder(cfg, lambda decoders: experiments.no_causal_target(cfg, "steering vector", decoders))
st.markdown(experiments.steering(cfg))

positive_default, negative_default, prompt_default, layer_default, scale_default = \
    steer_defaults(ctx.model_name, cfg.n_layers)
c1, c2 = st.columns(2)
positive = widgets.text("text_input", "Positive sentence", "steer.positive", positive_default, 300, where=c1)
negative = widgets.text("text_input", "Negative sentence", "steer.negative", negative_default, 300, where=c2)
prompt = widgets.text("text_input", "Prompt to steer", "steer.prompt", prompt_default, 300)
if not (positive.strip() and negative.strip() and prompt.strip()):
    st.info("Type the two sentences of the pair and a prompt.")
    st.stop()
c1, c2 = st.columns(2)
layer = widgets.slider("Block whose input is steered", "steer.layer", 0, cfg.n_layers - 1, layer_default,
                       clamp="for this model", where=c1)
scale = widgets.slider("Strength (negative: towards the negative sentence)", "steer.scale", -4.0, 4.0, scale_default,
                       step=0.25, where=c2)

vector = cache.steering_vector(ctx.model_name, ctx.device, positive, negative, layer)
unsteered = cache.steered(ctx.model_name, ctx.device, positive, negative, prompt, layer, 0.0)  # the same path
steered = cache.steered(ctx.model_name, ctx.device, positive, negative, prompt, layer, scale)
before, after = unsteered.probs, steered.probs
shown = list(dict.fromkeys(before.topk(6).indices.tolist() + after.topk(6).indices.tolist()))
chart.show(figures.grouped_bars([name(i) for i in shown],
                                {"unsteered": before[shown].tolist(), f"steered ({scale:+.2f} × vector)":
                                 after[shown].tolist()},
                                title="Next-token probabilities after the prompt", ytitle="probability"),
           key="steer.next", layer=layer)
moved = 0.5 * float((before - after).abs().sum())
top_b, top_a = int(before.argmax()), int(after.argmax())
st.caption(f"Top token unsteered “{name(top_b)}” ({float(before[top_b]):.1%}), steered “{name(top_a)}” "
           f"({float(after[top_a]):.1%}); {moved:.1%} of the probability moved (total variation distance). "
           "Strength 0 gives exactly the unsteered numbers.")

st.subheader("What it writes next")
n_new = 20
columns = st.columns(2)
for where, label, strength in ((columns[0], "Unsteered", 0.0),
                               (columns[1], f"Steered, {scale:+.2f} × vector at block {layer}", scale)):
    written = cache.steered_text(ctx.model_name, ctx.device, positive, negative, prompt, layer, strength, n_new)
    where.markdown(f"**{label}**")
    where.text(f"{prompt}▸{written}", help="The prompt, ▸, then what the model wrote.")
st.caption(f"The {n_new} most likely tokens one after another (greedy), the vector added at every step.")

plain = ctx.trace(prompt)
stream = plain.resid_pre(layer).norm(dim=-1)  # (T,)
typical = float(stream[1:].median()) if plain.n_tokens > 1 else float(stream[0])
c1, c2 = st.columns(2)
c1.metric("Length of strength × vector", f"{abs(scale) * float(vector.norm()):.1f}")
c2.metric(f"Typical length of the stream entering block {layer}", f"{typical:.1f}")
st.caption(experiments.steering_norms(abs(scale) * float(vector.norm()), typical, layer))
