"""Predict, then reveal: before an answer is shown the learner commits to a guess, then sees the model's real answer
and why. Five questions, each built from this model's numbers on this text (core.lesson); the lesson asks each at
its step, the Quiz page asks all five. One score per browser session (st.session_state), kept across pages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.lesson import Lesson, mask_window, most_split_word
from pages.common import chart, figures
from pages.common.html import visible

MASK_TOKENS = 8  # the mask is drawn for this many tokens around the followed one
ANSWERS = "quiz.answers"  # session key: {question key: the option chosen, or None when skipped}


@dataclass(frozen=True)
class Question:
    qid: str  # "next", "split", "prev", "mask", "temp0"
    prompt: str
    options: list[str]
    answer: int  # index into options
    why: str  # markdown: the real answer's explanation, with this model's numbers
    reveal: Callable[[], None] | None = None  # draws the evidence (a chart, the tokens) after the answer


def _order(options: list[str], answer: int, seed: str) -> tuple[list[str], int]:
    """The options in an order fixed by the text, so the right one is not always first."""
    rng = np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16))
    order = rng.permutation(len(options)).tolist()
    return [options[i] for i in order], order.index(answer)


def next_token(lesson: Lesson, tok, text: str) -> Question | None:
    if lesson.top_ids is None:
        return None
    ranks = [0, 3, 6, 9]  # the model's top choice and three it finds less likely
    names = [f"`{visible(tok.display(lesson.top_ids[r]))}`" for r in ranks]
    options, answer = _order(names, 0, "next" + text)
    rows = ", ".join(f"{names[i]} {lesson.top_probs[r]:.1%} (rank {r + 1})" for i, r in enumerate(ranks))
    why = (f"The model's most likely next token is {names[0]}: {lesson.top_probs[0]:.1%} of its probability. The "
           f"four options, as the model scores them: {rows}.")
    return Question("next", "Which token does the model find most likely to come next?", options, answer, why)


def split(tok, text: str) -> Question | None:
    found = most_split_word(tok, text)
    if found is None:
        return None
    word, n = found
    options = ["1", "2", "3", "4 or more"]
    answer = min(n, 4) - 1
    why = (f"`{word}` is **{n} token{'s' if n != 1 else ''}** for this tokenizer, as it stands in your text. Frequent "
           "words are one token; rarer or longer ones are cut into pieces the vocabulary has — and the same word can "
           "cut differently with or without the space before it.")
    return Question("split", f"Into how many tokens does this tokenizer cut the word “{word}”?", options, answer, why)


def previous_head(lesson: Lesson, model_name: str) -> Question | None:
    scores = lesson.previous_token.numpy()
    if len(lesson.tokens) < 3 or scores.size < 4:
        return None
    ranked = np.argsort(-scores, axis=None)
    picks = [int(ranked[i]) for i in (0, len(ranked) // 3, 2 * len(ranked) // 3, len(ranked) - 1)]
    n_heads = scores.shape[1]
    names = [f"layer {i // n_heads}, head {i % n_heads}" for i in picks]
    options, answer = _order(names, 0, "prev" + model_name)
    rows = "; ".join(f"{name}: {scores.flat[i]:.0%}" for name, i in zip(names, picks))
    why = (f"A previous-token head puts most of each token's attention on the token just before it. On your text, "
           f"the average attention to the token just before: {rows}. The strongest is **{names[0]}** — out of all "
           f"{scores.size} heads of this model.")
    return Question("prev", "Which of these heads is the previous-token head (each token looks at the one before)?",
                    options, answer, why)


def mask(lesson: Lesson, causal: bool) -> Question:
    options = ["The cells above the diagonal: keys that come later", "The cells below the diagonal: earlier keys",
               "The diagonal: each token itself", "None: every token sees every token"]
    options, answer = _order(options, 0 if causal else 3, "mask" + "".join(lesson.tokens))
    shown = mask_window(len(lesson.tokens), lesson.query, MASK_TOKENS)  # the followed token's row is drawn
    n, head = len(shown), lesson.mask_head
    rows = slice(shown.start, shown.stop)
    hidden, pattern = lesson.hidden[rows, rows].numpy(), lesson.mask_pattern[rows, rows].numpy()
    followed = f"`{visible(lesson.tokens[lesson.query])}` (row {lesson.query})"
    cells = f"Of the {n * n} cells below (tokens {shown.start}–{shown.stop - 1}), {int(hidden.sum())} are hidden"
    if causal:
        why = (f"This model is a decoder: row *i* (a query) may look only at keys 0…*i*. {cells} — all above the "
               "diagonal, drawn pale yellow — and get weight exactly 0 after the softmax. That is what lets it learn "
               f"to predict the next token: it never sees it. The token the lesson follows, {followed}, is the last "
               "row: it may see every key.")
        title = f"Block 0, head {head}: masked cells pale yellow"
    else:
        later = float(lesson.later_share[head])
        why = (f"This model is an encoder: nothing is masked. {cells} (and {int(lesson.hidden.sum())} in the whole "
               f"text). The map is block 0's head {head}, the one that looks furthest ahead: on average a token "
               f"puts {later:.0%} of its weight on the tokens **after** it — which is why an encoder cannot generate "
               f"text one token at a time. The token the lesson follows is {followed}.")
        title = f"Block 0, head {head}: nothing masked ({later:.0%} of the weight on later tokens)"

    def reveal() -> None:
        chart.show(figures.attention_heatmap(pattern, [lesson.tokens[i] for i in shown], title,
                                             hidden=hidden if hidden.any() else None, first=shown.start),
                   key="quiz.mask.fig", layer=0, head=head)

    return Question("mask", "In an attention map (rows: queries, columns: keys), which cells does this model's mask "
                    "hide?", options, answer, why, reveal)


def temperature_zero(lesson: Lesson, tok) -> Question | None:
    if lesson.top_ids is None:
        return None
    top = f"`{visible(tok.display(lesson.top_ids[0]))}`"
    probs = ", ".join(f"T = {t:g}: {p[0]:.1%}" for t, p in lesson.by_temperature.items())
    options = ["It always picks the most likely token", "It picks every token with equal chance",
               "It makes the text more surprising", "It gives no answer at all"]
    options, answer = _order(options, 0, "temp0" + "".join(lesson.tokens))
    why = (f"Temperature divides the logits before the softmax. The smaller it is, the more the largest logit "
           f"dominates: the top token {top} has {probs}. As T goes to 0 all the probability goes to it, so sampling "
           "becomes *greedy* — the same text always continues the same way. (Dividing by 0 itself is undefined: "
           "software treats temperature 0 as \"take the most likely token\".)")
    return Question("temp0", "What does temperature 0 do to the choice of the next token?", options, answer, why)


def _key(q: Question, scope: str) -> str:
    return f"{q.qid}|{scope}"


def score() -> tuple[int, int]:
    """(right, answered) over every question this session answered (a skipped question does not count)."""
    answers = st.session_state.get(ANSWERS, {})
    done = [v for v in answers.values() if v is not None]
    return sum(right for _, right in done), len(done)


def ask(q: Question, scope: str) -> bool:
    """Draw the question; True once it is answered (or skipped) and the answer shown. `scope` names the model and
    text, so a new text asks afresh."""
    answers = st.session_state.setdefault(ANSWERS, {})
    key = _key(q, scope)
    with st.container(border=True):
        st.markdown(f"🤔 **Predict first:** {q.prompt}")
        if key not in answers:
            wide = max(len(o) for o in q.options) > 24  # long options one under another, never cut off
            cols = [st.container() for _ in q.options] if wide else st.columns(len(q.options))
            for i, (col, option) in enumerate(zip(cols, q.options)):
                col.button(option, key=f"quiz.{q.qid}.{i}", on_click=_commit, args=(key, i, q.answer),
                           width="stretch")
            st.button("Skip — just show me", key=f"quiz.{q.qid}.skip", on_click=_commit, args=(key, None, q.answer),
                      type="tertiary")
            return False
        chosen = answers[key]
        if chosen is None:
            st.markdown(f"The answer: **{q.options[q.answer]}**.")
        elif chosen[1]:
            st.success(f"Right: **{q.options[q.answer]}**.", icon="✅")
        else:
            st.error(f"You said {q.options[chosen[0]]}. The answer: **{q.options[q.answer]}**.", icon="❌")
        st.markdown(q.why)
        if q.reveal:
            q.reveal()
    return True


def _commit(key: str, chosen: int | None, answer: int) -> None:
    st.session_state.setdefault(ANSWERS, {})[key] = None if chosen is None else (chosen, chosen == answer)
