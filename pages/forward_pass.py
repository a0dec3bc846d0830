"""The forward pass in one picture: the learner's text from tokens to the next token, every stage with its real
numbers for one chosen token, the blocks collapsible so 30 layers stay readable, each stage opening its own page."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.interpret.norms import norm_of
from pages.common import architecture, cache, chart, figures, sidebar, texts, widgets
from pages.common.html import token_spans, visible

WINDOW = 24  # the last tokens the page follows (the stream of earlier ones is computed but not summarised)
SHOWN_BLOCKS = 2  # with many layers: the first and last few blocks open, the rest behind one switch

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer

st.title("🧩 The forward pass")
st.markdown(
    "One pass of your text through the loaded model, stage by stage, with the real numbers for one token. The "
    "vector that flows from stage to stage is the **residual stream**: each block reads it and **adds** its result. "
    "Every stage opens its own page."
)
widgets.need_text(ctx.text)
summary = cache.forward_summary(ctx.model_name, ctx.device, ctx.text, WINDOW)
T = len(summary.tokens)
name = (lambda i: visible(tok.display(i))) if tok else str
first = summary.n_tokens - T
specials = set(tok.special_tokens.values()) if tok else set()
words = [i for i in range(T) if summary.token_ids[i] not in specials]  # not [CLS] or [SEP]
pos = widgets.choice("selectbox", "Follow the token", "fp.token", list(range(T)), default=words[-1] if words else T - 1,
                     format_func=lambda i: f"{first + i}: {visible(summary.tokens[i])}")
if first:
    st.caption(f"Your text is {summary.n_tokens:,} tokens; the page follows the last {T} (the model read them all).")
architecture.show(ctx, first + pos, "fp.arch", open_block=0)  # the model as one picture, this token's numbers on it
norms, added = summary.resid_norm[:, pos].numpy(), summary.added_norm[:, pos].numpy()
LAST = summary.index(cfg.n_layers - 1, "mlp")  # after the last block: the model's real prediction
lens_ids, lens_probs = cache.stage_lens(ctx.model_name, ctx.device, ctx.text, WINDOW, pos) or (None, None)


def lens(s: int, k: int = 1) -> str:
    """'would predict …' from the logit lens at stage s, for this token."""
    if lens_ids is None:
        return ""
    return ", ".join(f"`{name(int(i))}` {float(p):.0%}" for i, p in zip(lens_ids[s, :k], lens_probs[s, :k]))


def overview() -> go.Figure:
    """‖stream‖ after every stage (line) and ‖what the stage added‖ (bars), the logit lens's guess on top."""
    labels = summary.labels
    colours = ["#64748b"] + ["#2563eb", "#f59e0b"] * cfg.n_layers + ["#64748b"] * summary.has_final_norm
    fig = go.Figure([
        go.Bar(x=labels, y=np.nan_to_num(added), marker_color=colours, name="length of what the stage added",
               opacity=0.7),
        go.Scatter(x=labels, y=norms, mode="lines+markers", name="length of the residual stream after it",
                   line=dict(color="#111827")),
    ])
    if lens_ids is not None:
        every = max(1, cfg.n_layers // 10)
        marks = [summary.index(i, "mlp") for i in range(0, cfg.n_layers, every)] + [LAST]
        for s in dict.fromkeys(marks):
            fig.add_annotation(x=labels[s], y=float(norms[s]), text=visible(tok.display(int(lens_ids[s, 0]))),
                               showarrow=True, arrowhead=0, ay=-28, font=dict(size=11), bgcolor="#fef3c7")
    fig.update_layout(height=380, margin=dict(l=10, r=10, b=10),
                      title=f"Token {first + pos} ({visible(summary.tokens[pos])}) through the model",
                      xaxis=dict(title="stage (blue: attention, orange: feed-forward)", tickangle=-90,
                                 type="category", tickmode="array", tickvals=labels, tickfont=dict(size=10)),
                      yaxis_title="vector length (L2 norm)")
    return figures.legend_on_top(fig)


chart.show(overview(), key="fp.overview")
st.caption(
    "Bars: how long the vector each attention layer (blue) and feed-forward layer (orange) added to this token's "
    "stream is; line: the stream's own length after each stage." + (
        " Labels: the token the model would predict if it stopped after that block (the final norm and "
        "unembedding applied early — the *logit lens*); after the last block it is the real prediction."
        if lens_ids is not None else
        " A LayerNorm follows each of the two adds in every block (post-norm), so the stream's length is reset "
        "twice per block."))

st.subheader("1 · Text → tokens → ids")
st.markdown(texts.stage(cfg, "tokens") + f" Your text is **{summary.n_tokens:,} tokens**.")
chart.tokens(token_spans(summary.tokens, show_ids=True, scope="fp"), "fp.tokens")
widgets.open_page("tokenizer", "Tokenizer", "fp.go.tokens")

st.subheader("2 · Embedding" + ("" if cfg.positional == "rope" else " + position"))
st.markdown(texts.stage(cfg, "embed"))
c = st.columns(3)
c[0].metric("Token embedding row, length", f"{float(summary.embed_norm[pos]):.2f}")
if summary.pos_norm is not None:
    c[1].metric("Position vector, length", f"{float(summary.pos_norm[pos]):.2f}")
c[2].metric("Entering block 0, length", f"{norms[0]:.2f}")
c = st.columns(2)
widgets.open_page("embeddings", "Embedding space", "fp.go.embed", where=c[0])
widgets.open_page("positions", "Positional encoding", "fp.go.pos", where=c[1])

st.subheader(f"3 · {cfg.n_layers} blocks")
st.markdown(texts.block(cfg))
st.page_link("pages/flow.py", label="Information flow: which heads and blocks wrote into each token", icon="🕸️")
many = cfg.n_layers > 2 * SHOWN_BLOCKS + 1
show_all = not many or widgets.toggle(f"Show all {cfg.n_layers} blocks", "fp.all")
shown = range(cfg.n_layers) if show_all else [*range(SHOWN_BLOCKS), *range(cfg.n_layers - SHOWN_BLOCKS, cfg.n_layers)]
for i in shown:
    if many and not show_all and i == cfg.n_layers - SHOWN_BLOCKS:
        st.caption(f"… blocks {SHOWN_BLOCKS}–{cfg.n_layers - SHOWN_BLOCKS - 1} hidden: switch on “Show all "
                   f"{cfg.n_layers} blocks”, or see them all in the chart above.")
    a, m = summary.index(i, "attn"), summary.index(i, "mlp")
    guess = lens(m)
    label = (f"Block {i}: attention adds {added[a]:.1f}, feed-forward adds {added[m]:.1f} → stream {norms[m]:.1f}"
             + (f" · would predict {guess}" if guess else ""))
    with st.expander(label):
        before = norms[a - 1]
        norm = texts.NORM[cfg.norm]
        steps = ([f"{norm} → attention" if not cfg.post_norm else "attention", f"+ add ({'then ' + norm if cfg.post_norm else 'residual'})",
                  f"{norm} → feed-forward" if not cfg.post_norm else "feed-forward",
                  f"+ add ({'then ' + norm if cfg.post_norm else 'residual'})"])
        st.markdown(
            f"- stream in: length **{before:.2f}**\n"
            f"- {steps[0]}: adds a vector of length **{added[a]:.2f}**\n"
            f"- {steps[1]}: stream length **{norms[a]:.2f}**" + (f"; would predict {lens(a, 3)}" if guess else "") + "\n"
            f"- {steps[2]}: adds a vector of length **{added[m]:.2f}**\n"
            f"- {steps[3]}: stream length **{norms[m]:.2f}**" + (f"; would predict {lens(m, 3)}" if guess else ""))
        c = st.columns(3)
        widgets.open_page("attention", f"Attention, layer {i}", f"fp.go.attn.{i}", where=c[0],
                          model_name=ctx.model_name, layer=i)
        widgets.open_page("feed_forward", f"Feed-forward, layer {i}", f"fp.go.ffn.{i}", where=c[1], **{"ff.layer": i})
        widgets.open_page("residual", f"Norms of layer {i}", f"fp.go.res.{i}", where=c[2], **{"res.norm": norm_of(cfg, i)})

if not cfg.lm_head:
    st.subheader("4 · No unembedding")
    st.info(texts.no_unembedding(cfg), icon="ℹ️")
    st.stop()
st.subheader("4 · Final norm")
st.markdown(texts.stage(cfg, "final_norm") + f" Here the stream's length goes from {norms[-2]:.2f} to "
            f"**{norms[-1]:.2f}**.")
widgets.open_page("residual", "Residual stream & norms", "fp.go.final", **{"res.norm": norm_of(cfg)})
st.subheader("5 · Unembedding → logits → softmax")
st.markdown(texts.stage(cfg, "unembed") + " " + texts.stage(cfg, "softmax"))
if pos == T - 1:
    tr = ctx.trace()
    top = tr.probs.topk(5)
    st.markdown("**Next token** after your text: " + " · ".join(
        f"`{name(int(i))}` {float(p):.1%}" for i, p in zip(top.indices, top.values)))
else:
    st.markdown(f"At token {first + pos} the model predicts what comes after it: {lens(LAST, 5)}.")
widgets.open_page("next_token", "Next token", "fp.go.next")
