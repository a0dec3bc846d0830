"""Zero- vs few-shot prompting: the same question with 0 to 5 worked examples before it, the probability of the right
answer each time, what the model actually writes, the chat template where the model has one — and proof that no
weight changed."""

import streamlit as st

from core.learning import fingerprint
from core.prompting import TASKS, answer_probability, few_shot, shots_curve, shots_effect, showcase, write_answer
from pages.common import cache, chart, figures, sidebar, texts, widgets

WRITTEN = 24  # the most tokens "what it writes" shows

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer

st.title("🧪 Zero- vs few-shot prompting")
st.markdown(
    "A pretrained model can pick up a task from the prompt alone: **zero-shot** asks the question straight away, "
    "**few-shot** first shows a few worked examples. This *in-context learning* changes only what the model reads — "
    "not one weight (the fingerprint of all its weights is shown below, before and after)."
)
if not cfg.lm_head or tok is None:
    st.info(f"{cfg.name} is an encoder with no next-token head: it cannot answer by continuing a prompt. Pick a "
            "decoder in the sidebar.", icon="ℹ️")
    st.stop()
if tok.chat_template is not None:
    st.markdown(f"{cfg.name} is an **instruction-tuned** model: after pretraining it was fine-tuned on conversations "
                "to follow requests. Its chat template (the toggle) writes the prompt the way it saw them.")
if tok.chat_template is None:
    st.info(f"{cfg.name} was never trained on instructions, questions or any of these formats (the embedded model "
            "only read children's stories): what each task shows on it is measured below. Few-shot prompting works "
            "when pretraining saw enough text of this kind; SmolLM2 (see the README) shows the effect.", icon="ℹ️")
c1, c2 = st.columns([2, 1])
chat = widgets.toggle("Use the chat template", "fs.chat", where=c2) if tok.chat_template else False
before, curves, after = cache.remember(  # the weights' fingerprint taken before and after every prompt of the curves
    ("shots", ctx.model_name, ctx.device, chat),
    lambda: (fingerprint(model), {name: shots_curve(model, t, chat) for name, t in TASKS.items()}, fingerprint(model)))
task = TASKS[widgets.choice("selectbox", "Task", "fs.task", list(TASKS), default=showcase(curves), where=c1,
                            help="Chosen at first: the task whose examples raise the probability of the right "
                            "answer the most on this model.")]
curve = curves[task.name]
fig = figures.lines(list(range(len(curve))), {"P(right answer)": curve}, xtitle="examples in the prompt",
                    ytitle="probability of the right answer",
                    title=f"{cfg.name}: P(“{task.query[1]}”) with 0 to {len(curve) - 1} examples")
fig.update_yaxes(range=[0, 1.02])
chart.show(fig, key="fs.curve")
st.markdown(texts.shots_effect(cfg.name, shots_effect(curve), len(curve) - 1))
effects = {name: shots_effect(c) for name, c in curves.items()}
st.dataframe({"task": list(effects), "zero-shot": [f"{e.zero:.3f}" for e in effects.values()],
              "best with examples": [f"{e.best:.3f} ({e.best_shots})" for e in effects.values()],
              "what it shows here": [texts.EFFECT[e.kind] for e in effects.values()]}, hide_index=True)
n = widgets.slider("Examples in the prompt", "fs.n", 0, len(task.examples), 2)
prompt = few_shot(task, n, tok.chat_template if chat else None)
ids = tok.encode_with_special(prompt.text) if prompt.chat else tok.encode(prompt.text)
p, written = cache.remember(("shot", ctx.model_name, ctx.device, task.name, chat, n), lambda: (
    answer_probability(model, prompt), write_answer(model, ids, WRITTEN)))
c1, c2 = st.columns(2)
c1.metric(f"P(“{task.query[1]}”) with {n} example{'s' if n != 1 else ''}", f"{p:.3f}",
          f"{p - curve[0]:+.3f} vs zero-shot" if n else None)
shown = written.shown().replace("\n", " ⏎ ").strip()
c2.markdown(f"**What it writes (most likely tokens):** `{shown or '∅'}`" + (
    f" — then it ends its turn (`{written.ended}`)." if written.ended else
    f" … (cut after {WRITTEN} tokens)."))
st.code(prompt.text + "▌", language=None)
st.caption("One question, scored on its exact answer in either case (“negative” or “Negative”): which examples are "
           "shown, and in what order, changes the numbers, so read the curve's shape, not each wiggle. A low zero-shot "
           "score can mean the model would answer in another form (a sentence), not that it cannot tell.")
st.caption(
    f"The prompt as the model reads it ({len(ids)} tokens); the answer would go at ▌. Every token of "
    f"“{task.query[1]}” counts in its probability." + (
        " With the chat template the question becomes the user's turn and the model answers as the assistant, "
        "usually in a sentence: the bare word right after the turn marker is then unlikely even when the sentence "
        "it writes is right." if chat else ""))
st.metric("Fingerprint of all the weights (SHA-256 of every parameter)", after,
          "unchanged by prompting" if after == before else "CHANGED", delta_color="off", delta_arrow="off")
st.caption(f"Taken before the model read the prompts of the curves above ({before}) and after all of them "
           f"({after}).")
