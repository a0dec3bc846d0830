"""Information flow: the contribution graph from the input tokens through every block's attention heads and
feed-forward blocks to one position's final stream (core.interpret.flow), with a threshold, each head's share, and the stream
traced back to the input tokens."""

import streamlit as st

from core.interpret.flow import describe_flow, routes
from pages.common import cache, chart, experiments, figures, sidebar, widgets
from pages.common.flow_graph import flow_graph
from pages.common.html import visible

N_MAX = 64  # tokens: the graph has a column per token (and the shares grow as tokens²)

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("🕸️ Information flow")
st.markdown(experiments.flow(cfg))
widgets.need_text(ctx.text)
tr = ctx.trace()
T = tr.n_tokens
if T > N_MAX:
    st.info(f"This graph has a column per token and reads texts of up to {N_MAX} tokens; yours has {T}. Shorten the "
            "text in the sidebar.", icon="✂️")
    st.stop()
tokens = [visible(t) for t in tr.tokens]
if not cfg.lm_head:
    st.info(experiments.flow_encoder(cfg), icon="ℹ️")
c1, c2 = st.columns(2)
position = widgets.choice("selectbox", "Follow the final stream at" if cfg.lm_head else "Follow the final vector of",
                          "flow.pos", list(range(T)), default=T - 1 if cfg.lm_head else T // 2, where=c1,
                          format_func=lambda p: f"{p}: {tokens[p]}")
threshold = widgets.slider("Threshold: keep edges whose share is above", "flow.threshold", 0.01, 0.30, 0.04,
                           where=c2, step=0.01)
found = cache.information_flow(ctx.model_name, ctx.device, ctx.text)
prediction = None
followed = f"“{tokens[position]}” (position {position})"
if cfg.lm_head and position == T - 1:
    top = int(tr.probs.argmax())
    prediction = f"“{name(top)}” ({float(tr.probs[top]):.0%})"
    title, output = f"What flows into {followed}, which predicts {prediction}", f"predicts “{name(top)}”"
elif cfg.lm_head:
    title, output = f"What flows into {followed}, which predicts the token after it", "its final stream"
else:
    title, output = f"What flows into the final vector of {followed}", "its final vector"
edges = routes(found, position, threshold)
fig = flow_graph(edges, cfg.n_layers, tokens, position, title=title, output_label=output)
chart.show(fig, key="flow.graph")
st.caption(experiments.flow_caption(threshold))
st.markdown("\n".join(f"- {s}" for s in describe_flow(found, position, threshold, tokens, prediction)))
widgets.download_csv({"kind": [e.kind for e in edges], "block": [e.target[1] for e in edges],
                      "into": [e.target[0] for e in edges], "from_position": [e.source[2] for e in edges],
                      "to_position": [e.target[2] for e in edges], "share": [e.share for e in edges],
                      "heads": ["; ".join(f"{h}:{w:.3f}" for h, w in e.heads) for e in edges]},
                     f"flow_{cfg.name}.csv", label="Download the edges (CSV)")

st.subheader("Which heads write into it")
heads = found.heads_into(position).numpy()
chart.show(figures.heatmap(heads, x=[f"head {h}" for h in range(cfg.n_heads)],
                           y=[f"block {layer}" for layer in range(cfg.n_layers)], colorscale="Blues", zmid=None,
                           title=f"Each head's share of the stream at “{tokens[position]}” after its block's attention",
                           xtitle="head", ytitle="", height=max(300, 20 * cfg.n_layers + 120),
                           text=[[f"{v:.2f}" for v in row] for row in heads]), key="flow.heads")
block, head = divmod(int(heads.argmax()), cfg.n_heads)
st.caption(f"The largest: block {block}, head {head}, with {heads.max():.2f} of the stream after that block's "
           "attention (over every token it reads). A row's heads, the residual path and the bias together make 1.")

st.subheader(f"Block by block at “{tokens[position]}”")
here = {k: v.tolist() for k, v in found.at_position(position).items()}
fig = figures.lines(list(range(cfg.n_layers)), here, title=f"Shares of the stream at “{tokens[position]}” in each block",
                    xtitle="block", ytitle="share")
chart.show(fig.update_xaxes(dtick=max(1, cfg.n_layers // 15)), key="flow.blocks")
st.caption("The first three lines split the stream after the block's attention (with the bias they add up to 1); the "
           "last is the feed-forward block's share of the stream leaving the block.")
