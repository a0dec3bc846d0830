"""Activation patching: a clean and a corrupted sentence, the residual stream entering each block at each position
copied from the clean run into the corrupted one, the target's restored probability as a layer × position grid, what
the grid says in words, and one patched run's top tokens."""

import numpy as np
import streamlit as st

from core.interventions import default_pair, describe_sweep
from pages.common import cache, chart, experiments, figures, sidebar, widgets
from pages.common.html import token_spans, visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("🔬 Activation patching")
widgets.need_a_decoder(cfg, lambda decoders: experiments.no_causal_target(cfg, "patch", decoders))
st.markdown(experiments.patching(cfg))

default_clean, default_corrupt = default_pair(ctx.model_name, "patch")
c1, c2 = st.columns(2)
clean = widgets.text("text_input", "Clean sentence (makes the target likely)", "patch.clean", default_clean, 300,
                     where=c1)
corrupt = widgets.text("text_input", "Corrupted sentence (same number of tokens, one word changed)", "patch.corrupt",
                       default_corrupt, 300, where=c2)
if not clean.strip() or not corrupt.strip():
    st.info("Type two sentences to compare.")
    st.stop()
clean_tr, corrupt_tr = ctx.trace(clean), ctx.trace(corrupt)
c1.html(token_spans(clean_tr.tokens, clean_tr.token_ids, show_ids=False))
c2.html(token_spans(corrupt_tr.tokens, corrupt_tr.token_ids, show_ids=False))
T = clean_tr.n_tokens
if corrupt_tr.n_tokens != T:
    st.warning(f"The clean sentence is {T} tokens and the corrupted one {corrupt_tr.n_tokens}: patching copies "
               "position p into position p, so they need the same number of tokens. Change one word for another "
               "that is one token too (the coloured boxes above show the tokens).", icon="✂️")
    st.stop()

top = clean_tr.probs.topk(10).indices.tolist()
target = widgets.choice("selectbox", "Target token (the clean sentence's top 10 next tokens)", "patch.target", top,
                        default=top[0],
                        format_func=lambda i: f"{name(i)} ({float(clean_tr.probs[i]):.1%} clean, "
                                              f"{float(corrupt_tr.probs[i]):.1%} corrupted)")
grid = cache.patch_grid(ctx.model_name, ctx.device, clean, corrupt, target)
clean_p, corrupt_p = float(clean_tr.probs[target]), float(corrupt_tr.probs[target])
labels = figures.labels([c if c == x else f"{c}/{x}" for c, x in zip(clean_tr.tokens, corrupt_tr.tokens, strict=True)])
rows = [f"block {layer}" for layer in range(cfg.n_layers)]
fig = figures.heatmap(grid, x=labels, y=rows, colorscale="Blues", zmid=None, xtitle="position patched (clean/"
                      "corrupted token where they differ)", ytitle="residual stream entering", height=max(320, 22 * cfg.n_layers + 140),
                      text=np.vectorize(lambda v: f"{v:.2f}")(grid),
                      title=f"P({name(target)}) after patching one vector from the clean run")
fig.update_traces(zmin=0.0, zmax=max(clean_p, float(grid.max())))
event = chart.show(fig, key="patch.grid", on_select="rerun", selection_mode="points")
st.caption(experiments.patching_cells(cfg))
reading = describe_sweep(grid, [visible(t) for t in clean_tr.tokens], clean_p, corrupt_p, name(target))
st.markdown("\n".join(f"- {s}" for s in reading.sentences))
widgets.download_csv({"block": [layer for layer in range(cfg.n_layers) for _ in range(T)],
                      "position": list(range(T)) * cfg.n_layers,
                      "token": [corrupt_tr.tokens[p] for _ in range(cfg.n_layers) for p in range(T)],
                      "probability": grid.reshape(-1).tolist()}, f"patching_{cfg.name}.csv")

st.subheader("One patched run")
points = (event.selection.points if event and event.selection else []) or []
if points:  # a click on a cell chooses it; later slider moves win until the next click
    clicked = (rows.index(points[0]["y"]), labels.index(points[0]["x"]))
    if st.session_state.get("patch._clicked") != clicked:
        st.session_state["patch._clicked"] = clicked
        st.session_state["patch.layer"], st.session_state["patch.pos"] = clicked
best_layer, best_pos = np.unravel_index(grid.argmax(), grid.shape)
c1, c2 = st.columns(2)
layer = widgets.slider("Block whose input is patched", "patch.layer", 0, cfg.n_layers - 1, int(best_layer),
                       clamp="for this model", where=c1)
pos = widgets.choice("selectbox", "Position patched", "patch.pos", list(range(T)), default=int(best_pos), where=c2,
                     format_func=lambda p: labels[p])
run = cache.patched(ctx.model_name, ctx.device, clean, corrupt, layer, pos)
shown = list(dict.fromkeys(run.probs.topk(8).indices.tolist() + [target]))
series = {"clean": clean_tr.probs[shown].tolist(), "corrupted": corrupt_tr.probs[shown].tolist(),
          f"corrupted, block {layer} position {pos} patched": run.probs[shown].tolist()}
chart.show(figures.grouped_bars([name(i) for i in shown], series, title="Next-token probabilities",
                                ytitle="probability"), key="patch.run", layer=layer)
after = float(run.probs[target])
st.caption(f"With the stream entering block {layer} at position {pos} taken from the clean run "
           f"(“{visible(clean_tr.tokens[pos])}”), "
           f"{name(target)} has {after:.1%} (clean {clean_p:.1%}, corrupted {corrupt_p:.1%}); the top token is "
           f"{name(int(run.probs.argmax()))}.")
