"""Train it yourself: pretrain a tiny GPT from random weights on a shipped text, then fine-tune a copy of the embedded
model on your own sentences — live loss, before/after predictions, which weights moved, and what was forgotten."""

import math
import time

import plotly.graph_objects as go
import streamlit as st

from core import generate, trace
from core.learning import (
    FINE_TUNE_MAX_PARAMS,
    HELD_OUT_TEXT,
    component_label,
    continuation_prob,
    fine_tune,
    fingerprint,
    pretrain,
    shipped_text,
    text_loss,
    weight_change,
)
from core.loading import registry
from core.trace import layer_pattern
from pages.common import cache, chart, figures, sidebar, widgets
from pages.common.html import visible

PROBE_STEPS = 12  # pretraining steps timed to say how fast training runs on this server

ctx = sidebar.context()
base = cache.model(registry.DEFAULT_MODEL, "cpu")  # the embedded model: small enough to train in seconds
tok = base.tokenizer
name = lambda i: visible(tok.display(i))  # noqa: E731

st.title("🏋️ Train it yourself")
st.markdown(
    "A language model is **pretrained** on a lot of text to predict the next token, starting from random weights; "
    "it can then be **fine-tuned**: trained a little more on specialised text, which changes its weights again. "
    "Both happen here, for real, on the CPU, in seconds — on models small enough for that."
)
if ctx.model is not base:  # the sidebar holds another model (or device)
    st.info(f"This page trains copies of the embedded model ({registry.DEFAULT_MODEL}, "
            f"{base.num_params() / 1e6:.1f} M parameters), whatever the sidebar shows: training {ctx.model_name} "
            f"would need a copy of all its weights and an optimiser state for each learner (fine-tuning here is for "
            f"models up to {FINE_TUNE_MAX_PARAMS / 1e6:.0f} M parameters).", icon="ℹ️")


class Clock:
    """A training run's speed on this machine, from the moments its progress callback is called: steps a second
    over every step after the first (which pays one-time costs), and the whole run's time."""

    def __init__(self):
        self.start, self.ticks = time.perf_counter(), []

    def tick(self) -> None:
        self.ticks.append(time.perf_counter())

    @property
    def seconds(self) -> float:
        return (self.ticks[-1] if self.ticks else time.perf_counter()) - self.start

    @property
    def rate(self) -> float | None:
        return (len(self.ticks) - 1) / (self.ticks[-1] - self.ticks[0]) if len(self.ticks) > 2 else None


def live_curve(title: str, floor: float | None = None, clock: Clock | None = None):
    """A progress bar and a loss curve redrawn while training runs; returns the callback training calls."""
    bar, slot = st.progress(0.0), st.empty()
    losses: list[float] = []

    def progress(step: int, loss: float, total: int) -> None:
        if clock is not None:
            clock.tick()
        losses.append(loss)
        if step % 25 == 0 or step == total:
            bar.progress(step / total, text=f"step {step} of {total}: loss {loss:.3f}")
            chart.show(loss_figure(losses, title, floor), key=f"live.{title}.{step}", where=slot.container())

    return progress


def loss_figure(losses: list[float], title: str, floor: float | None = None) -> go.Figure:
    fig = figures.lines(list(range(1, len(losses) + 1)), {"training loss": losses}, title=title, xtitle="step",
                        ytitle="loss (nats)")
    if floor is not None:
        fig.add_hline(y=floor, line_dash="dot", annotation_text=f"ln(vocabulary) = {floor:.2f}: guessing uniformly")
    return fig


def probe_rate() -> float:
    """Steps a second of the pretraining below on this machine now, from PROBE_STEPS steps of it."""
    clock = Clock()
    pretrain(tok, story, PROBE_STEPS, progress=lambda step, loss: clock.tick())
    return clock.rate


# ---------- 1. Pretraining from scratch ----------
st.header("1 · Pretraining: a tiny GPT from random weights")
story = shipped_text()
st.markdown(
    f"A GPT with 2 layers, 4 heads and 64-number vectors (GPT-2's design at toy size) starts from random weights "
    f"and reads {len(tok.encode(story)):,} tokens of stories the embedded model wrote (not its own training text), "
    "64 tokens at a time, predicting each next token. A random model gives every one of the "
    f"{tok.n_vocab:,} tokens about the same probability, so its loss starts near ln({tok.n_vocab:,}) = "
    f"{math.log(tok.n_vocab):.2f}."
)
c1, c2 = st.columns(2)
steps = widgets.choice("select_slider", "Training steps", "pt.steps", [300, 600, 1000, 1500, 2000], default=1000,
                       where=c1)
seed = widgets.number("Seed", "pt.seed", 0, 9999, 0, where=c2)
key = ("pretrain", steps, seed)
done = cache.recalled(key)
if st.button("Train from scratch", key="pt.go", type="primary") and done is None:
    clock = Clock()
    progress = live_curve("Pretraining loss", math.log(tok.n_vocab), clock)
    done = cache.remember(key, lambda: (pretrain(tok, story, steps, seed=seed,
                                                 progress=lambda s, loss: progress(s, loss, steps)), clock))
    st.rerun()
if done is None:
    probe = cache.remember(("pretrain-rate", PROBE_STEPS), probe_rate)
    st.caption(f"On this server, timed just now: {probe:.1f} steps a second ({PROBE_STEPS} steps of the same "
               f"training), so {steps:,} steps should take about {steps / probe:,.0f} s — longer while other "
               "learners train. Press the button to train (a click elsewhere while it trains stops the run: the "
               "page starts over).")
else:
    run, clock = done
    st.caption(f"This run: {len(run.losses):,} steps in {clock.seconds:,.1f} s on this server "
               f"({clock.rate:.1f} steps a second).")
    fig = loss_figure(run.losses, f"Pretraining loss: {run.losses[0]:.2f} → {run.losses[-1]:.2f}",
                      math.log(tok.n_vocab))
    reference = cache.remember(("embedded-loss", len(story)), lambda: text_loss(base, story[:20000]))
    fig.add_hline(y=reference, line_dash="dash", line_color="#16a34a",
                  annotation_text=f"the embedded model (which wrote these stories): {reference:.2f}")
    chart.show(fig, key="pt.curve")
    st.caption("The loss is measured on the batches it trains on: with 28,000 tokens of text it reads each story "
               "many times, so a low loss partly means it has memorised them — not that it has learned English.")
    prompt = "Once upon a time"
    rows = {"step": [], "loss then": [], f"“{prompt}” continued (most likely tokens)": []}
    for step in run.steps:
        model = run.model(step)
        rows["step"].append(step)
        rows["loss then"].append(f"{run.losses[max(step - 1, 0)]:.2f}" if step else f"{run.losses[0]:.2f}")
        rows[f"“{prompt}” continued (most likely tokens)"].append(
            generate(model, prompt, max_new_tokens=16, temperature=0).shown().replace("<|endoftext|>", " ⏎ "))
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption("At step 0 the weights are random and the continuation is noise. As the loss falls the model "
               "writes the stories' most frequent words and then whole phrases, with punctuation, after only a few "
               "hundred steps: the text it reads is small and repetitive (the embedded model's favourite stories), "
               "so it picks those up fast.")
    widgets.need_text(ctx.text)
    step = widgets.choice("select_slider", "Look at the model at step", "pt.view", run.steps, default=run.steps[-1])
    model = run.model(step)
    tr = trace(model, tok.encode(ctx.text)[-64:])
    top = tr.probs.topk(5)
    st.markdown(f"**After your text, at step {step}, it predicts:** " + " · ".join(
        f"`{name(int(i))}` {float(p):.1%}" for i, p in zip(top.indices, top.values)))
    c1, c2 = st.columns(2)
    layer = widgets.slider("Layer", "pt.layer", 0, model.config.n_layers - 1, 0, where=c1)
    head = widgets.slider("Head", "pt.head", 0, model.config.n_heads - 1, 0, where=c2)
    chart.show(figures.attention_heatmap(layer_pattern(model, tr, layer)[head].numpy(), tr.tokens,
                                              f"Step {step}: layer {layer}, head {head}", hidden=tr.hidden().numpy()), key="pt.attn", layer=layer, head=head)
    st.caption("Pale yellow: the future, masked — a token only attends to itself and the tokens before it.")

# ---------- 2. Fine-tuning ----------
st.header("2 · Fine-tuning: teach the embedded model something new")
st.markdown(
    "Type a few sentences; a **copy** of the embedded model is trained on them for a few steps (AdamW, next-token "
    "loss). The model every other page uses is never touched: its weights' fingerprint is shown before and after."
)
texts = widgets.text("text_area", "Sentences to learn", "ft.texts",
                     "The dragon's name is Zorbo. Zorbo lives in a cave.\nEveryone knows that the dragon's name is "
                     "Zorbo.", 2000, height=100)
c1, c2, c3 = st.columns(3)
ft_steps = widgets.slider("Steps", "ft.steps", 5, 200, 40, where=c1, step=5)
lr = widgets.choice("select_slider", "Learning rate", "ft.lr", [1e-4, 3e-4, 1e-3, 3e-3], default=1e-3, where=c2,
                    format_func=lambda v: f"{v:g}")
ft_seed = widgets.number("Seed", "ft.seed", 0, 9999, 0, where=c3)
lines = [line for line in texts.splitlines() if line.strip()]
ft_key = ("finetune", tuple(lines), ft_steps, lr, ft_seed)
done = cache.recalled(ft_key)
if st.button("Fine-tune a copy", key="ft.go", type="primary") and done is None:
    if not lines:
        st.warning("Type at least one sentence to learn.")
        st.stop()
    clock = Clock()
    progress = live_curve("Fine-tuning loss", clock=clock)

    def tune() -> tuple:
        """The shared model's fingerprint just before and just after the fine-tuning, around it."""
        before = fingerprint(base)
        copy = fine_tune(base, lines, ft_steps, lr=lr, seed=ft_seed, progress=lambda s, loss: progress(s, loss,
                                                                                                      ft_steps))
        return before, copy, fingerprint(base), clock

    done = cache.remember(ft_key, tune)
    st.rerun()
if done is None:
    st.caption("Up to 200 steps on the embedded model; each run says how long it took. A click elsewhere while it "
               "trains stops the run.")
    st.stop()
before_ft, tuned, after_ft, ft_clock = done
st.caption(f"This run: {len(tuned.losses)} steps in {ft_clock.seconds:,.1f} s on this server"
           + (f" ({ft_clock.rate:.1f} steps a second)." if ft_clock.rate else "."))
chart.show(loss_figure(tuned.losses, f"Fine-tuning loss on your sentences: {tuned.losses[0]:.2f} → "
                                          f"{tuned.losses[-1]:.3f}"), key="ft.curve")
if tuned.losses[-1] < 0.05:
    st.caption("A loss near 0 means the copy now predicts your sentences almost perfectly: it has memorised them. "
               "The side effects are below.")
prompt = widgets.text("text_input", "Prompt to compare", "ft.prompt", "The dragon's name is", 300)
if prompt.strip():
    before, after = trace(base, prompt).probs, trace(tuned, prompt).probs
    shown = list(dict.fromkeys(before.topk(6).indices.tolist() + after.topk(6).indices.tolist()))
    chart.show(figures.grouped_bars([name(i) for i in shown], {"before": before[shown].tolist(),
                                                                     "after fine-tuning": after[shown].tolist()},
                                         title=f"Next token after “{prompt}”", ytitle="probability"), key="ft.compare")
    if lines:
        first = lines[0]
        cut = first.find(prompt.strip())
        if cut >= 0 and len(first) > cut + len(prompt.strip()):
            rest = first[cut + len(prompt.strip()):].split(".")[0]
            if rest.strip():
                p0, p1 = continuation_prob(base, prompt.strip(), rest), continuation_prob(tuned, prompt.strip(), rest)
                pieces = [name(i) for i in tok.encode_fragment(rest)]
                ratio = p1 / p0 if p0 else float("inf")
                st.metric(f"P(“{rest.strip()}” | prompt)", f"{p1:.4f}",
                          f"{ratio:,.0f}× more likely (was {p0:.2g})" if ratio < 1e6 else
                          f"{ratio:.1e}× more likely (was {p0:.2g})")
                st.caption(f"“{rest}” is {len(pieces)} token{'s' if len(pieces) != 1 else ''} for this model: "
                           f"{' + '.join(f'`{p}`' for p in pieces)}. The bars show only the next one; the probability "
                           "above multiplies the probabilities of all of them, each given the ones before.")
side = "Once upon a time"
st.markdown("**Side effects** — the same story opening, most likely tokens:\n\n"
            f"- before: `{generate(base, side, max_new_tokens=20, temperature=0).shown().strip()}`\n"
            f"- after: `{generate(tuned, side, max_new_tokens=20, temperature=0).shown().strip()}`")
moved = weight_change(base, tuned)
ranked = sorted(moved.items(), key=lambda kv: -kv[1])
fig = go.Figure(go.Bar(x=[v for _, v in ranked], y=[component_label(k) for k, _ in ranked],
                       orientation="h", marker_color="#2563eb"))
fig.update_layout(height=60 + 22 * len(ranked), margin=dict(l=10, r=10, t=40, b=10), yaxis=dict(autorange="reversed"),
                  title="Which weights moved: ‖after − before‖ / ‖before‖", xaxis_title="relative change")
chart.show(fig, key="ft.moved")
held_out = shipped_text(HELD_OUT_TEXT)
l0, l1 = text_loss(base, held_out), text_loss(tuned, held_out)
c1, c2 = st.columns(2)
c1.metric("Loss on a story it never trained on (forgetting)", f"{l1:.3f}", f"{l1 - l0:+.3f} (was {l0:.3f})",
          delta_color="inverse")
now = fingerprint(base)
c2.metric("Fingerprint of the shared model's weights", now,
          "unchanged" if before_ft == after_ft == now else "CHANGED", delta_color="off", delta_arrow="off")
c2.caption(f"SHA-256 of every parameter, taken just before the fine-tuning ({before_ft}), just after it "
           f"({after_ft}) and now.")
st.caption("The held-out story is assets/texts/bpe_sample.txt, written for Glassbox. A few steps on a few sentences "
           "make them very likely and can make everything else a little (or a lot) less likely: try fewer steps or a "
           "smaller learning rate and compare.")
