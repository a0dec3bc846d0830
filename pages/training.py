"""How it learned: the embedded model's loss curves, and its predictions and attention at each training snapshot."""

import streamlit as st

from core.analysis import previous_token_scores
from core.weights import DEFAULT_MODEL, snapshot_steps
from pages.common import cache, figures, state, texts
from pages.common.html import visible

ctx = state.context()
st.title("📈 How it learned")
st.markdown(texts.training())

name = ctx.model_name if snapshot_steps(ctx.model_name) else DEFAULT_MODEL
log = cache.log(name)
steps = snapshot_steps(name)
if log is None or not steps:
    st.info("Training history is only shipped for the embedded model, and it is missing here.")
    st.stop()
if name != ctx.model_name:
    st.info(f"{ctx.model_name} was trained elsewhere, without a shipped history: this page shows the embedded "
            f"model, {name}.")

train = [(e["step"], e["train_loss"]) for e in log["log"] if "train_loss" in e]
val = [(e["step"], e["val_loss"]) for e in log["log"] if "val_loss" in e]
fig = figures.lines([s for s, _ in train], {"training loss": [v for _, v in train]}, title="Loss while training",
                    xtitle="step", ytitle="cross-entropy (nats per token)")
fig.add_scatter(x=[s for s, _ in val], y=[v for _, v in val], mode="lines+markers", name="validation loss")
recipe, n_ctx = log["recipe"], log["config"]["n_ctx"]
short = recipe.get("short_steps", 0)
if short:
    fig.add_vline(x=short, line_dash="dot", line_color="#64748b",
                  annotation_text=f"{recipe['short_ctx']} → {n_ctx}-token windows")
st.plotly_chart(fig, width="stretch", key="train.loss")
curriculum = (
    f" For the first {short:,} steps it trained on short {recipe['short_ctx']}-token windows (as many tokens per "
    f"step), while the validation loss is always measured on {n_ctx}-token windows: positions past "
    f"{recipe['short_ctx']} were still untrained, so the validation loss stalls. At step {short:,} training moves to "
    f"full windows — the training loss jumps as it meets those positions — and both curves fall again."
    if short else ""
)
st.caption(f"{log['tokens_seen']:,} tokens seen in {log['wall_time_s'] / 60:.0f} minutes on {log['threads']} CPU "
           f"threads; the training split has {log['train_tokens']:,} tokens, the validation split "
           f"{log['val_tokens']:,} (whole stories the model never trained on).{curriculum}")
state.download_csv({"step": [s for s, _ in train], "train_loss": [v for _, v in train]}, "training_loss.csv")

st.subheader("Your text through training")
state.need_text(ctx)
step = st.select_slider("Training step", options=steps, value=steps[-1], key="train.step")
tr = cache.snapshot_trace(name, step, ctx.text)
model = cache.snapshot(name, step)
top = tr.probs.topk(8)
c1, c2 = st.columns(2)
c1.plotly_chart(figures.bars([visible(model.tokenizer.display(i)) for i in top.indices.tolist()], top.values.tolist(),
                             title=f"Next-token prediction at step {step}"), width="stretch", key="train.bars")
cfg = model.config
with c2:
    layer = state.clamped_int("Layer", "layer", 0, cfg.n_layers - 1)
    head = state.clamped_int("Head", "head", 0, cfg.n_heads - 1)
c2.plotly_chart(figures.attention_heatmap(tr.pattern(layer)[head].numpy(), tr.tokens, f"L{layer} H{head} at step {step}"),
                width="stretch", key="train.attn")
prev = previous_token_scores(cache.snapshot_trace(name, steps[-1], ctx.text)) if len(tr.tokens) > 1 else None
hint = ""
if prev is not None:
    best_layer, best_head = divmod(int(prev.argmax()), prev.shape[1])
    hint = (f" On your text the final model's most previous-token head is L{best_layer} H{best_head} "
            f"({float(prev.max()):.2f} of each token's attention goes to the token just before): pick it and move the "
            "step to see when that diagonal forms.")
st.caption("At step 0 the weights are random: the prediction is nearly uniform and attention is spread evenly. "
           "Watch both sharpen as the steps go by." + hint)
