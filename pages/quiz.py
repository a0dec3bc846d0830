"""Predict, then reveal: five questions on the learner's own text and the loaded model — a guess first, then the
model's real answer and why. The score is kept for the session; the page's link (model and text in it) is the quiz
a teacher shares."""

import streamlit as st

from pages.common import cache, quiz, sidebar, widgets

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer

st.title("🤔 Quiz: predict, then reveal")
st.markdown("Commit to a guess before the answer appears: each answer is this model's real behaviour on your text. "
            "Change the text in the sidebar for new questions.")
widgets.need_text(ctx.text)
lesson = cache.lesson(ctx.model_name, ctx.device, ctx.text)
scope = f"{ctx.model_name}|{ctx.text}"
questions = [quiz.next_token(lesson, tok, ctx.text), quiz.split(tok, ctx.text),
             quiz.previous_head(lesson, ctx.model_name), quiz.mask(lesson, cfg.causal),
             quiz.temperature_zero(lesson, tok)]
asked = [q for q in questions if q is not None]
for number, question in enumerate(asked, 1):
    st.subheader(f"Question {number} of {len(asked)}")
    quiz.ask(question, scope)
right, answered = quiz.score()
st.divider()
st.metric("Your score this session", f"{right} / {answered}")
if len(asked) < len(questions):
    st.caption(f"{len(questions) - len(asked)} question(s) do not apply here: " + (
        "an encoder predicts no next token and has no temperature." if not cfg.lm_head else
        "the text is too short (the previous-token question needs 3 tokens, the token question a word)."))
st.caption("To share this quiz, copy the address bar: it holds the model and the text, so everyone gets the same "
           "questions." + (" Add `&present=1` for presenter mode." if "present" not in st.query_params else ""))
