"""How it learned: the embedded model's loss curves, and its predictions and attention at each training snapshot."""

import streamlit as st

from core.interpret.heads import best_head, previous_token_scores
from core.loading import registry
from core.trace import layer_pattern, layer_patterns
from pages.common import cache, chart, figures, sidebar, texts, widgets
from pages.common.html import visible

ctx = sidebar.context()
st.title("📈 How it learned")
entry = ctx.entry if ctx.entry.history else registry.get(registry.DEFAULT_MODEL)
waves = bool(entry.history and entry.history.log.recipe.pos_init_scale)  # the position table started as waves
if entry.history is not None and entry.name != ctx.model_name:  # said first: the text below is about that model
    st.info(f"{ctx.model_name} was trained elsewhere, without a shipped history: this page shows the embedded "
            f"model, {entry.name}.")
st.markdown(texts.training(waves))

if entry.history is None:
    st.info("Training history is only shipped for the embedded model, and it is missing here.")
    st.stop()
name, steps = entry.name, entry.history.steps
log = entry.history.log  # parsed and checked once per process (core.loading.registry)

train_steps, train_loss = log.curve("train_loss")
val_steps, val_loss = log.curve("val_loss")
fig = figures.lines(train_steps, {"training loss": train_loss}, title="Loss while training",
                    xtitle="step", ytitle="cross-entropy (nats per token)")
fig.add_scatter(x=val_steps, y=val_loss, mode="lines+markers", name="validation loss")
recipe, n_ctx = log.recipe, log.config.n_ctx
short = recipe.short_steps
if short:
    fig.add_vline(x=short, line_dash="dot", line_color="#64748b",
                  annotation_text=f"{recipe.short_ctx} → {n_ctx}-token windows")
chart.show(fig, key="train.loss")
curriculum = (
    f" For the first {short:,} steps it trained on short {recipe.short_ctx}-token windows (as many tokens per "
    f"step), while the validation loss is always measured on {n_ctx}-token windows: positions past "
    f"{recipe.short_ctx} were still untrained, so the validation loss stalls. At step {short:,} training moves to "
    f"full windows — the training loss jumps as it meets those positions — and both curves fall again."
    if short else ""
)
st.caption(f"{log.tokens_seen:,} tokens seen in {log.wall_time_s / 60:.0f} minutes on {log.threads} CPU "
           f"threads; the training split has {log.train_tokens:,} tokens, the validation split "
           f"{log.val_tokens:,} (whole stories the model never trained on).{curriculum}")
widgets.download_csv({"step": train_steps, "train_loss": train_loss}, "training_loss.csv")

st.subheader("Your text through training")
widgets.need_text(ctx.text)
step = widgets.choice("select_slider", "Training step", "train.step", steps, default=steps[-1])
tr = cache.snapshot_trace(name, step, ctx.text)
model = cache.snapshot(name, step)
top = tr.probs.topk(8)
c1, c2 = st.columns(2)
chart.show(figures.bars([visible(model.tokenizer.display(i)) for i in top.indices.tolist()], top.values.tolist(),
                             title=f"Next-token prediction at step {step}"), key="train.bars", where=c1)
cfg = model.config
with c2:
    layer, head = widgets.layer_head(name, cfg.n_layers, cfg.n_heads, columns=False)
chart.show(figures.attention_heatmap(layer_pattern(model, tr, layer)[head].numpy(), tr.tokens, f"L{layer} H{head} at step {step}",
                                          hidden=tr.hidden().numpy()), key="train.attn", where=c2, layer=layer, head=head)
hint = ""
if len(tr.tokens) > 1:
    prev_layer, prev_head, prev_score = best_head(previous_token_scores(layer_patterns(
        cache.snapshot(name, steps[-1]), cache.snapshot_trace(name, steps[-1], ctx.text))))
    hint = (f" On your text the final model's most previous-token head is L{prev_layer} H{prev_head} "
            f"(on average {prev_score:.2f} of a token's attention goes to the token just before): pick it and move the "
            "step to see when that diagonal forms.")
st.caption(f"At step 0 the weights are random{' (the position table excepted, see above)' if waves else ''}: the prediction is nearly uniform and attention is spread evenly. "
           "Watch both sharpen as the steps go by." + hint)
