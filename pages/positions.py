"""Positional encoding: the model's actual scheme, the paper's sinusoids beside it, and a word-order experiment."""

import streamlit as st

from core.interpret.embeddings import cosine_matrix, mean_norm_ratio
from core.interpret.positions import odd_positions, position_table, rope_pair
from core.model import rope_distance_profile, rope_inv_freq, sinusoidal_table
from pages.common import cache, chart, figures, sidebar, texts, widgets
from pages.common.html import token_spans, visible

ctx = sidebar.context()
model = ctx.model
cfg = model.config

st.title("📍 Positional encoding")
st.markdown(texts.positions(cfg))

n_show = min(cfg.n_ctx, 256)
if cfg.positional == "learned":
    table = position_table(model, n_show)  # (n, d)
    st.subheader("This model's learned position table")
    chart.show(figures.heatmap(table.numpy(), title=f"Positions 0–{n_show - 1} × {cfg.d_model} dimensions "
                                    "(learned weights; colours span 99% of the values)", xtitle="dimension",
                                    ytitle="position", height=460, robust=True), key="pos.table")
    sim = cosine_matrix(table).numpy()
    chart.show(figures.heatmap(sim, title="Cosine similarity between position vectors", xtitle="position",
                                    ytitle="position", height=460), key="pos.similarity")
    history = ctx.entry.history
    if history is not None and history.log.recipe.pos_init_scale:
        start = position_table(cache.snapshot(ctx.model_name, history.steps[0]), n_show)
        growth = mean_norm_ratio(table, start)
        st.caption("This table did not start as random noise: training started it as cos/sin waves in which each "
                   "position is the previous one turned by the same rotation (`core.training.init_positions`), then "
                   f"changed it like any other weight — its rows are now {growth:.1f}× as long as at step 0. The "
                   "stripes parallel to the diagonal of the similarity map are what is left of that rotation: a "
                   "position resembles its neighbours in the same way everywhere, which is what lets one attention "
                   "head find the token just before at any position (see the Attention page's previous-token head).")
    else:
        st.caption("Nothing told the model how positions relate: any structure here was learned from the training "
                   "text." + (texts.bert_positions(*odd_positions(table)) if cfg.family == "bert" else ""))
    widgets.download_csv({"position": list(range(n_show)), **{f"d{j}": table[:, j].numpy() for j in range(cfg.d_model)}},
                         "positions.csv")
elif cfg.positional == "rope":
    freqs = rope_inv_freq(cfg).numpy()
    st.subheader("This model's rotary frequencies")
    chart.show(figures.lines(list(range(len(freqs))), {"radians per position": freqs.tolist()},
                                  title=f"Rotation speed of each of the {len(freqs)} dimension pairs (θ = "
                                  f"{cfg.rope_theta:g}; log scale: the slow pairs still turn)", xtitle="dimension pair",
                                  ytitle="radians / position").update_yaxes(type="log"), key="pos.frequencies")
    score = rope_distance_profile(cfg, min(cfg.n_ctx, 512))
    chart.show(figures.lines(list(range(len(score))), {"q·k (normalised)": score.tolist()},
                                  title="How q·k depends only on the distance between two tokens",
                                  xtitle="relative distance", ytitle="score"), key="pos.distance")
    st.caption("For identical q and k (all ones), the rotated dot product is the mean of cos(distance × θ_j): it "
               "depends on the distance only, and fast pairs wash out with distance.")
    widgets.download_csv({"pair": list(range(len(freqs))), "radians_per_position": freqs}, "rope_frequencies.csv")
    if ctx.text:
        st.subheader("RoPE on your text")
        c1, c2, c3 = st.columns(3)
        rope_layer = widgets.slider("Layer", "pos.rope_layer", 0, cfg.n_layers - 1, 0, clamp="for this model", where=c1)
        rope_head = widgets.slider("Head", "pos.rope_head", 0, cfg.n_heads - 1, 0, clamp="for this model", where=c2)
        pair = widgets.slider("Dimension pair", "pos.pair", 0, len(freqs) - 1, 0, clamp="for this model", where=c3)
        text_tr = cache.with_attention(ctx.model_name, ctx.device, ctx.text, rope_layer)
        turn = rope_pair(text_tr, rope_layer, rope_head, pair)
        labels = [f"{i}:{visible(t)}" for i, t in enumerate(text_tr.tokens)]
        c1, c2 = st.columns(2)
        chart.show(figures.rotation(turn.q_before.numpy(), turn.q_after.numpy(), labels,
                                         title=f"q, layer {rope_layer} head {rope_head}, pair {pair}"), key="pos.rope.q", where=c1)
        chart.show(figures.rotation(turn.k_before.numpy(), turn.k_after.numpy(), labels,
                                         title=f"k, key/value head {cfg.kv_head(rope_head)}, pair {pair}"), key="pos.rope.k", where=c2)
        st.caption(texts.rope_on_text(cfg, pair, turn.radians_per_position, text_tr.n_tokens))

st.subheader("The original paper's sinusoidal encoding" + (" (this model's scheme)" if cfg.positional == "sinusoidal"
                                                         else " — for comparison, not this model's"))
st.latex(r"PE_{(pos,\,2i)} = \sin\!\left(pos / 10000^{2i/d}\right),\quad PE_{(pos,\,2i+1)} = "
         r"\cos\!\left(pos / 10000^{2i/d}\right)")
paper = sinusoidal_table(n_show, cfg.d_model).numpy()
chart.show(figures.heatmap(paper, title=f"Sinusoidal table, {n_show} positions × {cfg.d_model} dimensions",
                                xtitle="dimension", ytitle="position", height=420), key="pos.sinusoid")
if cfg.positional == "sinusoidal":
    widgets.download_csv({"position": list(range(n_show)), **{f"d{j}": paper[:, j] for j in range(cfg.d_model)}},
                         "positions.csv")

if cfg.encoder_decoder:
    st.page_link("pages/translation.py", label="See this model translate", icon="🇫🇷")
    st.stop()
st.subheader("Word-order experiment")
widgets.need_text(ctx.text)
if model.tokenizer is None:
    st.stop()
tok = model.tokenizer
tr = ctx.trace()
seed = widgets.number("Shuffle seed", "pos.seed", 0, 10_000, 0)
exp = cache.order_experiment(ctx.model_name, ctx.device, ctx.text, int(seed))
st.markdown(texts.word_order(cfg))
c1, c2 = st.columns(2)
for col, ids, title in ((c1, exp.original, "Original order"), (c2, exp.shuffled, "Shuffled")):
    col.markdown(f"**{title}**")
    chart.tokens(token_spans([tok.display(i) for i in ids], ids, show_ids=False, scope=tok.name),  # hover: where
                 f"pos.order.{title.split()[0].lower()}", where=col)
if exp.probs is not None:
    rows = {"order": [], "position signal": [], "top 5 next tokens": []}
    for (order, positions), probs in exp.probs.items():
        top = probs.topk(5)
        rows["order"].append(order)
        rows["position signal"].append("on (the model as trained)" if positions else "removed")
        rows["top 5 next tokens"].append(", ".join(f"{visible(tok.display(i))} {p:.2f}"
                                                   for i, p in zip(top.indices.tolist(), top.values.tolist())))
    st.dataframe(rows, hide_index=True)
with_pos, without = exp.same_token_cosine[True], exp.same_token_cosine[False]
m1, m2 = st.columns(2)
m1.metric("Same token, both orders: cosine of its final vector (mean)", f"{float(with_pos.mean()):.4f}",
          help="position signal on")
m2.metric("…with the position signal removed", f"{float(without.mean()):.4f}",
          help=f"lowest over the tokens: {float(without.min()):.4f}")
st.caption(texts.word_order_result(cfg, float(without.min())))

layer, head = widgets.layer_head(ctx.model_name, cfg.n_layers, cfg.n_heads, columns=False)
ts = ctx.trace(exp.shuffled)
c1, c2 = st.columns(2)
original = cache.pattern(ctx.model_name, ctx.device, ctx.text, layer)[head]
shuffled = cache.pattern(ctx.model_name, ctx.device, exp.shuffled, layer)[head]
chart.show(figures.attention_heatmap(original.numpy(), tr.tokens, f"L{layer} H{head}, original",
                                          hidden=tr.hidden().numpy()), key="pos.attn.orig", where=c1, layer=layer, head=head)
chart.show(figures.attention_heatmap(shuffled.numpy(), ts.tokens, f"L{layer} H{head}, shuffled",
                                          hidden=ts.hidden().numpy()), key="pos.attn.shuf", where=c2, layer=layer, head=head)
st.caption("The same head on both orders (position signal on). Compare them: a head that follows positions (the "
           "token just before, the first token) keeps its place relative to the diagonal while the words under it "
           "move; a head that follows particular words moves with them.")
