"""Next token: the real softmax, sampling controls column by column, a sampling simulator, step-by-step
generation as a tree of branches, and the logit lens."""

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from core import GenerationTree, sample_token, sampling_distribution
from core.generate import entropy
from core.loading import registry
from core.trace import token_limit
from pages.common import cache, chart, errors, figures, sidebar, switch_off, texts, widgets
from pages.common.html import token_spans, visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer

st.title("🎲 Next token")
if not cfg.lm_head:
    st.info(texts.no_next_token(cfg, [e.name for e in registry.entries() if e.kind == "decoder"]), icon="ℹ️")
    st.stop()
st.markdown(texts.next_token(cfg))
widgets.need_text(ctx.text)
tr = ctx.trace()  # the default trace other pages share; the logit lens is computed when asked for (below)
name = (lambda i: visible(tok.display(i))) if tok else str

probs = tr.probs
top = probs.topk(15)
said = (tok.decode(tr.token_ids) if tok else "".join(tr.tokens)).replace("\n", "↵")  # whole characters, as read
st.subheader(f"After “{said if len(said) <= 70 else '…' + said[-70:]}”, the model predicts…")
chart.show(figures.bars([name(i) for i in top.indices.tolist()], top.values.tolist(),
                             title="Top 15 of the softmax at the last position"), key="nt.top")
H = entropy(probs)
c1, c2, c3 = st.columns(3)
total = float(probs.double().sum())  # summed in float64: the sum adds no rounding of its own
c1.metric("Sum of all probabilities", f"{total:.4f}", help=f"Summed exactly: {total:.7f}. Each probability is stored "
          f"as a 32-bit float (about 7 significant digits); over {cfg.vocab_size:,} tokens their rounding adds up to "
          f"{abs(total - 1):.1e}.")
c2.metric("Entropy (T = 1)", f"{H:.3f} nats")
c3.metric("Effective number of choices (e^entropy)", f"{math.exp(H):.1f}")
widgets.download_csv(lambda logits=tr.logits, probs=probs: {  # made when clicked: a name per token
    "token": [name(i) for i in range(cfg.vocab_size)], "id": list(range(cfg.vocab_size)), "logit": logits.numpy(),
    "probability": probs.numpy()}, "next_token.csv")

@errors.fragment
def switched_off() -> None:
    """Its own choices rerun only this part."""
    st.subheader("Switch parts of the model off")
    st.markdown("Zero one or more attention heads or whole feed-forward layers for one pass and compare the prediction: "
                "an experiment on what each part contributes (the model itself is not changed).")
    c1, c2 = st.columns([2, 1])
    head_names = [f"L{lay} H{h}" for lay in range(cfg.n_layers) for h in range(cfg.n_heads)]
    off_heads = widgets.multi("Attention heads to switch off", "nt.off_heads", head_names, where=c1)
    off_mlps = widgets.multi("Feed-forward layers to switch off", "nt.off_mlps", [f"L{lay}" for lay in range(cfg.n_layers)],
                             where=c2)
    switch_off.show(ctx, [tuple(int(x[1:]) for x in name.split()) for name in off_heads],
                    [int(name[1:]) for name in off_mlps], "nt.off.fig")



switched_off()


def percent(p: float) -> str:
    """A probability as a percentage that never shows a real chance as 0%."""
    return f"{p:.0%}" if p >= 0.1 else f"{p:.1%}" if p >= 0.001 else f"{p:.2%}" if p >= 0.0001 else f"{p:.1e}"


def sampling_controls():
    """Temperature, top-k, top-p and seed, the distribution they make (table and cumulative curve)."""
    st.subheader("Temperature, top-k, top-p")
    c1, c2, c3, c4 = st.columns(4)
    temperature = widgets.slider("Temperature", "temperature", 0.0, 2.0, 1.0, where=c1, step=0.05,
                                 help="0 means greedy: always the most likely token")
    top_k = widgets.number("Top-k (0 = off)", "top_k", 0, min(1000, cfg.vocab_size), 0, where=c2)
    top_p = widgets.slider("Top-p (1 = off)", "top_p", 0.0, 1.0, 1.0, where=c3, step=0.01)
    seed = widgets.number("Seed", "seed", 0, 2**31 - 1, 0, where=c4)
    cols = sampling_distribution(tr.logits, temperature, top_k or None, top_p)
    order = cols.scaled.argsort(descending=True)[:20]
    st.dataframe(pd.DataFrame({  # text columns: a column mixing numbers and words cannot be sent to the browser
        "token": [name(i) for i in order.tolist()],
        "logit": [f"{v:.3f}" for v in cols.logits[order].tolist()],
        "logit / T": [f"{v:.3f}" for v in cols.scaled[order].tolist()] if temperature > 0 else ["(greedy)"] * len(order),
        "after top-k / top-p": ["removed" if math.isinf(v) else f"{v:.3f}" for v in cols.filtered[order].tolist()],
        "probability": [f"{v:.4f}" for v in cols.probs[order].tolist()],
    }), hide_index=True)
    kept = int((cols.probs > 0).sum())
    settings = f"T = {temperature:g}" + (f", top-k = {top_k}" if top_k else "") if temperature > 0 else "T = 0 (greedy)"
    sorted_p = cols.candidates.sort(descending=True).values
    n_shown = min(len(sorted_p), max(50, 2 * kept), 2000)  # a 50,000-point line costs seconds to send and draw
    cum = sorted_p[:n_shown].cumsum(0).tolist()
    shown_note = f" (the {n_shown:,} most likely of {len(sorted_p):,})" if n_shown < len(sorted_p) else ""
    fig = figures.lines(list(range(1, n_shown + 1)), {f"cumulative probability ({settings})": cum},
                        title=f"Where top-p cuts: the distribution after {settings}",
                        xtitle=f"tokens, most likely first{shown_note}, log scale", ytitle="cumulative probability")
    fig.update_xaxes(type="log")
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.25))
    if kept <= n_shown:
        fig.add_vline(x=kept + 0.5, line_dash="dot", line_color="#dc2626", annotation_text=f"{kept} kept")
    if top_p < 1:
        fig.add_hline(y=top_p, line_dash="dash", annotation_text=f"top-p = {top_p:g}")
    chart.show(fig, key="nt.cum")
    st.caption(f"With these settings {kept:,} token{'s' if kept != 1 else ''} can be drawn. Top-p looks at the "
               "distribution after temperature and top-k: it keeps the most likely tokens until their probabilities "
               "reach p (1 = off; close to 0 only the most likely token is left).")

    return temperature, top_k, top_p, seed, cols, kept


def uncertainty(temperature: float, cols) -> None:
    st.subheader("Temperature and uncertainty")
    temps = tuple(round(0.05 * i, 2) for i in range(1, 41))  # 0.05 … 2.0
    sweep_h, sweep_top = cache.entropy_by_temperature(ctx.model_name, ctx.device, ctx.text, temps)
    fig = figures.two_axes(temps, ("entropy (nats)", sweep_h), ("probability of the most likely token", sweep_top),
                           title="Entropy and the top token's probability as the temperature changes",
                           xtitle="temperature T")
    fig.add_vline(x=max(temperature, 0.05), line_dash="dash",
                  annotation_text=f"your T = {temperature:g}" if temperature > 0 else "T = 0: greedy, entropy 0")
    chart.show(fig, key="nt.temp")
    H_T = entropy(cols.probs)
    st.caption(f"At your settings the distribution sampled from has entropy {H_T:.3f} nats (about {math.exp(H_T):.1f} "
               f"effective choices), against {H:.3f} at T = 1. Dividing the logits by a small T sharpens the softmax "
               "towards the top token (entropy falls to 0 as T → 0); a large T flattens it.")



def simulator(cols, seed: int, kept: int) -> None:
    st.subheader("Sampling simulator")
    if not widgets.toggle("Draw tokens from this distribution and compare the counts with it", "nt.simulate"):
        st.caption("How often does each token come out when you draw many times? Switch on to draw 10 to 10,000 "
                   "tokens with your seed and set their shares beside the probabilities.")
        return
    n_draws = widgets.choice("select_slider", "Draws", "nt.draws", [10, 100, 1000, 10000], default=1000)
    generator = torch.Generator().manual_seed(int(seed))
    draws = torch.multinomial(cols.probs, n_draws, replacement=True, generator=generator)
    counts = torch.bincount(draws, minlength=cfg.vocab_size)
    shown = cols.probs.topk(min(12, kept)).indices.tolist()
    sim = go.Figure([go.Bar(name="probability", x=[name(i) for i in shown], y=cols.probs[shown].tolist()),
                     go.Bar(name=f"share of {n_draws} draws", x=[name(i) for i in shown],
                            y=(counts[shown] / n_draws).tolist())])
    sim.update_layout(barmode="group", height=360, margin=dict(l=10, r=10, t=30, b=10))
    chart.show(sim, key="nt.sim")
    st.caption("Each draw picks a token with its probability; with more draws the histogram approaches the "
               "distribution (the law of large numbers). The seed makes the draws repeatable.")



def step_by_step(temperature: float, top_k: int, top_p: float, seed: int) -> None:
    st.subheader("Generate step by step")
    if tok is None:
        return
    trees = st.session_state.setdefault("nt.trees", {})  # one tree per model and text, the latest 8
    tree = trees.setdefault(f"{ctx.model_name}::{ctx.text}", GenerationTree())
    while len(trees) > 8:
        trees.pop(next(iter(trees)))


    def step_to(token_id: int, prob: float) -> None:
        try:
            tree.add(token_id, prob)
        except ValueError:
            st.session_state["nt.full"] = True
        st.rerun()


    generated = tree.path()
    prefix = tr.token_ids + generated
    if len(prefix) >= token_limit(cfg):
        st.info("The context is full (as far as this page traces it): rewind to a shorter branch.")
    else:
        step_tr = ctx.trace(prefix) if generated else tr
        step_cols = sampling_distribution(step_tr.logits, temperature, top_k or None, top_p)
        chart.tokens(token_spans([tok.display(i) for i in prefix], show_ids=False, mark_from=tr.n_tokens),
                     "nt.path")
        c1, c2 = st.columns([1, 3])
        if c1.button("Sample the next token", key="nt.sample", type="primary"):
            drawn = sample_token(step_cols, torch.Generator().manual_seed(int(seed) + len(tree)), greedy=temperature <= 0)
            step_to(drawn, float(step_cols.probs[drawn]))
        alternatives = step_cols.probs.topk(min(5, int((step_cols.probs > 0).sum()))).indices.tolist()
        picks = c2.columns(len(alternatives))
        for col, alt in zip(picks, alternatives):
            if col.button(f"{name(alt)}  {percent(float(step_cols.probs[alt]))}", key=f"nt.alt.{alt}"):
                step_to(alt, float(step_cols.probs[alt]))
    if st.session_state.pop("nt.full", False):
        st.info(f"The tree is full ({tree.max_nodes} tokens): rewind to a branch you made, or change the text to start "
                "a new tree.")
    if len(tree) == 1:  # only the root: nothing to draw yet
        if len(prefix) < token_limit(cfg):  # the buttons above are there
            st.caption("Sample a token or pick one of the likely ones: every choice you make grows a tree of branches "
                       "here, and a click on a token rewinds the text to it.")
        return
    labels = ["your text"] + [f"{name(t)} {percent(p)}" for t, p in zip(tree.token_ids[1:], tree.probs[1:])]
    event = chart.show(figures.tree(tree.layout(), tree.parents, labels, tree.on_path(), tree.current), key=f"nt.tree.{len(tree)}.{tree.current}", on_select="rerun", selection_mode="points")
    clicked = [int(p["point_index"]) for p in (event.selection.points if event else [])
               if p.get("curve_number") == 1 and p.get("point_index") is not None]  # curve 1: the nodes, in node order
    if clicked and clicked[0] != tree.current:
        tree.current = clicked[0]
        st.rerun()
    n_ends = len(tree.leaves())
    st.caption(f"The tree holds {len(tree) - 1} generated token{'s' if len(tree) != 2 else ''} in {n_ends} "
               f"branch{'es' if n_ends != 1 else ''}; each shows the probability it had when it was chosen. Click a token "
               "to rewind there and try another one; the red path is the text above.")



@errors.fragment
def sampling() -> None:
    """Everything the sampling controls change: moving one reruns only this part of the page."""
    temperature, top_k, top_p, seed, cols, kept = sampling_controls()
    uncertainty(temperature, cols)
    simulator(cols, seed, kept)
    step_by_step(temperature, top_k, top_p, seed)


sampling()

st.subheader("Logit lens: the top token after every layer")
if not widgets.toggle("Show the logit lens (one pass through the final norm and unembedding per layer)", "nt.lens"):
    st.stop()
tr = ctx.trace(lens_top_k=1)
lens = tr.lens_ids[:, :, 0]  # (layers, T)
lens_p = tr.lens_probs[:, :, 0].numpy()
T = tr.n_tokens
cells = np.array([[name(int(i)) for i in row] for row in lens.tolist()])
fig = figures.heatmap(lens_p, x=figures.labels(tr.tokens), y=[f"after layer {i}" for i in range(cfg.n_layers)],
                      title="Each cell: the token the final norm + unembedding would predict from that layer's "
                      "residual stream (colour = its probability)", colorscale="Viridis", zmid=None,
                      height=max(300, 40 * cfg.n_layers + 160), text=cells, xtitle="position (predicting the next token)")
chart.show(fig, key="nt.lens.map")
