"""Where the parameters live: the loaded model's parameters by component, with formulas that add up to its exact
count, and the same formulas on published configurations (GPT-2, GPT-3, BERT) to show where "175 billion" comes
from."""

import plotly.graph_objects as go
import streamlit as st

from core.interpret.matrices import matrix_names
from core.parameters import NOT_PUBLISHED, PUBLISHED, breakdown, total
from pages.common import cache, chart, figures, sidebar, widgets
from pages.common.html import visible
from pages.common.texts import matrix_caption

ctx = sidebar.context()
model = ctx.model
cfg = model.config

st.title("🧮 Where the parameters live")
st.markdown(
    "A model's **parameters** are the numbers learned in training: every entry of every weight matrix, bias and "
    "norm gain. Nothing else is stored — the vectors on the other pages are computed from your text and these. "
    "Their count follows from a handful of sizes in the configuration:"
)
letters = (f"V = {cfg.vocab_size:,} tokens · d = {cfg.d_model} (vector size) · L = {cfg.n_layers} blocks · "
           f"{cfg.n_heads} heads of hs = {cfg.head_dim}" +
           (f" · n_kv = {cfg.kv_heads} key/value heads" if cfg.kv_heads != cfg.n_heads else "") +
           f" · m = {cfg.mlp_dim:,} (feed-forward width) · n_ctx = {cfg.n_ctx:,}")
st.markdown(f"**{cfg.name}:** {letters}")
rows = breakdown(cfg)
n = model.num_params()
table = {"component": [r.component for r in rows], "formula": [r.formula for r in rows],
         "parameters": [f"{r.count:,}" for r in rows], "share": [f"{r.count / n:.1%}" for r in rows]}
st.dataframe(table, hide_index=True, width="stretch")
c = st.columns(3)
c[0].metric("Sum of the rows", f"{sum(r.count for r in rows):,}")
c[1].metric("The model's own count (num_params)", f"{n:,}")
c[2].metric("In the blocks", f"{sum(r.count for r in rows if r.per_block) / n:.0%}")
fig = go.Figure(go.Bar(x=[r.count for r in rows if r.count], y=[r.component for r in rows if r.count],
                       orientation="h", marker_color="#2563eb"))
fig.update_layout(height=60 + 34 * sum(1 for r in rows if r.count), margin=dict(l=10, r=10, t=30, b=10),
                  xaxis_title="parameters", yaxis=dict(autorange="reversed"), title=f"{cfg.name} by component")
chart.show(fig, key="par.bars")
embed = rows[0].count / n


def per_block(rows, kind: str = "") -> int:
    """Parameters of one block (of one part of it)."""
    return sum(r.count for r in rows if r.per_block and r.component.startswith(kind)) // cfg.n_layers


st.caption(
    f"The token embedding holds {embed:.0%} of this model's parameters"
    + (" and is reused as the unembedding (tied weights), so it is counted once." if cfg.lm_head and
       cfg.tied_embeddings else ".")
    + (" Positions cost nothing here: RoPE computes its rotations." if cfg.positional == "rope" else "")
    + f" Each block holds {per_block(rows):,} parameters: attention {per_block(rows, 'attention'):,}, "
    f"feed-forward {per_block(rows, 'feed-forward'):,}"
    + (" — 4·d² and 8·d² (m = 4d), the 12·d² per block that dominates as models grow." if cfg.mlp != "swiglu" and
       cfg.mlp_dim == 4 * cfg.d_model and cfg.kv_heads == cfg.n_heads else
       " (its SwiGLU layer has three matrices, and its keys and values are narrower than its queries)."
       if cfg.mlp == "swiglu" else "."))
widgets.download_csv({"component": table["component"], "formula": table["formula"],
                      "parameters": [r.count for r in rows]}, f"parameters_{cfg.name}.csv")

st.subheader("The same formulas on famous models")
st.markdown("Each configuration is taken from its published source; the count is computed here with the formulas "
            "above, not copied.")
published = {"model": [], "layers": [], "d": [], "vocabulary": [], "computed": [], "as stated": [], "source": []}
for p in PUBLISHED:
    count = total(p.config, p.pooler)
    published["model"].append(p.name)
    published["layers"].append(p.config.n_layers)
    published["d"].append(p.config.d_model)
    published["vocabulary"].append(f"{p.config.vocab_size:,}")
    published["computed"].append(f"{count:,}" if count < 1e9 else f"{count:,} ({count / 1e9:.1f} B)")
    published["as stated"].append(p.stated)
    published["source"].append(p.source)
st.table(published, hide_index=True)  # a table wraps its cells: the sources are read whole, never clipped
gpt3 = next(p for p in PUBLISHED if p.name.startswith("GPT-3")).config
per_block = 12 * gpt3.d_model**2
st.markdown(
    f"**Where 175 billion comes from:** GPT-3 has {gpt3.n_layers} blocks of d = {gpt3.d_model:,}. Each block holds "
    f"about 12·d² = {per_block / 1e9:.2f} billion parameters (attention's four d×d matrices, the feed-forward "
    f"layer's two d×4d), and {gpt3.n_layers} × {per_block / 1e9:.2f} B = {gpt3.n_layers * per_block / 1e9:.1f} B; "
    f"the embedding tables add {(gpt3.vocab_size + gpt3.n_ctx) * gpt3.d_model / 1e9:.2f} B. BERT's counts include "
    "its pooler (a d×d layer on the [CLS] vector), which Glassbox's encoders do not load."
)
for model_name, note in NOT_PUBLISHED.items():
    st.info(f"**{model_name}:** {note}", icon="ℹ️")
st.caption("You may read that BERT has 350 million or 11 million parameters: BERT-base has about 110 million and "
           "BERT-large about 340 million (335 million counted here).")

st.subheader("The weights themselves")
st.markdown("Every count above is a matrix of learned numbers. Here they are, as this model stores them: pick a block and "
            "a matrix. Read it the way it is used, a row vector times the matrix (x @ W): a row for each input "
            "number, a column for each output number.")
names = matrix_names(model)
c1, c2 = st.columns(2)
layer = widgets.slider("Block", "params.layer", 0, cfg.n_layers - 1, 0, clamp="for this model", where=c1) \
    if cfg.n_layers > 1 else 0
which = widgets.choice("selectbox", "Matrix", "params.matrix", names, default=names[0], where=c2)
ids = model.tokenizer.encode(ctx.text) if model.tokenizer is not None and ctx.text else [0]
m = cache.weight_matrix(ctx.model_name, ctx.device, layer, which, ids[-1] if ids else 0)
chart.show(figures.weight_matrix(m), key="params.w", layer=layer)
st.caption(matrix_caption(m, cfg, visible(model.tokenizer.display(m.marked_row)) if m.marked_row is not None and
                          model.tokenizer is not None else None))
