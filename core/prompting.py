"""Zero- and few-shot prompting: the same question with 0, 1, 2 … worked examples before it, and the probability the
model gives the right answer each time. In-context learning changes the prompt, never a weight.

The tasks and their examples are written for Glassbox (short, unambiguous, one right answer).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.generate import decoded, generate, shown
from core.learning import continuation_prob
from core.model import Transformer
from core.tokenizer import render_chat


@dataclass(frozen=True)
class Task:
    name: str
    instruction: str
    pattern: str  # "{x}" and "{y}" in one example
    examples: tuple[tuple[str, str], ...]
    query: tuple[str, str]  # the question asked last, and its right answer


TASKS = {t.name: t for t in [
    Task("Capital cities", "Give the capital city of each country.", "Country: {x}\nCapital: {y}",
         (("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo"), ("Canada", "Ottawa")),
         ("Germany", "Berlin")),
    Task("Sentiment", "Say whether each review is positive or negative.", "Review: {x}\nSentiment: {y}",
         (("I loved this film, it was wonderful.", "positive"), ("The plot was dull and far too long.", "negative"),
          ("What a delightful little book!", "positive"), ("The battery died after one day.", "negative"),
          ("Friendly staff and great coffee.", "positive")),
         ("The food was cold and the waiter was rude.", "negative")),
    Task("English → French", "Translate each English word into French.", "English: {x}\nFrench: {y}",
         (("cat", "chat"), ("dog", "chien"), ("house", "maison"), ("book", "livre"), ("water", "eau")),
         ("apple", "pomme")),
]}


@dataclass(frozen=True)
class Prompt:
    text: str  # what the model reads
    answer: str  # the right continuation (with its leading space where the format puts one)
    chat: bool  # wrapped in the model's chat template (special tokens included)


def few_shot(task: Task, n_shots: int, chat_template: str | None = None) -> Prompt:
    """The task's instruction, its first n_shots examples and the query, with the answer left open."""
    if not 0 <= n_shots <= len(task.examples):
        raise ValueError(f"{task.name} has {len(task.examples)} examples, not {n_shots}")
    shots = [task.pattern.format(x=x, y=y) for x, y in task.examples[:n_shots]]
    question = task.pattern.format(x=task.query[0], y="").rstrip()
    body = "\n\n".join([task.instruction, *shots, question])
    if chat_template is None:
        return Prompt(body, " " + task.query[1], False)
    # In a chat the question is the user's turn and the answer starts the assistant's turn (no leading space).
    text = render_chat(chat_template, [{"role": "user", "content": body}])
    return Prompt(text, task.query[1], True)


def answer_probability(model: Transformer, prompt: Prompt) -> float:
    """P(right answer | prompt), every answer token counted (see core.learning.continuation_prob), in either case:
    "negative" and "Negative" are both right, and as different token sequences their probabilities add up."""
    tok = model.tokenizer
    ids = tok.encode_with_special(prompt.text) if prompt.chat else tok.encode(prompt.text)
    spellings = {prompt.answer, prompt.answer.replace(prompt.answer.strip(), prompt.answer.strip().capitalize())}
    return sum(continuation_prob(model, ids, tok.encode_fragment(s)) for s in spellings)


def shots_curve(model: Transformer, task: Task, chat: bool = False) -> list[float]:
    """P(right answer) with 0, 1, … len(examples) examples in the prompt."""
    template = model.tokenizer.chat_template if chat else None
    if chat and template is None:
        raise ValueError(f"{model.config.name} has no chat template")
    return [answer_probability(model, few_shot(task, n, template)) for n in range(len(task.examples) + 1)]


@dataclass(frozen=True)
class Effect:
    """What a zero- to few-shot curve shows, read from its numbers (`shots_effect`): "helps" (the examples raise
    P(right answer) by at least HELPS), "knows" (right without examples, and they change little), "fails" (low with
    any number of examples), "hurts" (the examples lower it), or "mixed"."""

    kind: str
    zero: float  # P(right answer) with no example
    best: float  # the highest P with 1 or more examples
    best_shots: int  # with how many examples
    low: float  # the lowest P on the curve
    high: float  # the highest


HELPS = 0.2  # a rise of P(right answer) this large is the examples' doing, not one prompt's wobble
KNOWS = 0.5  # right more often than not without any example
FAILS = 0.1  # never above this: the model does not do the task


def shots_effect(curve: list[float]) -> Effect:
    """Classify a curve from shots_curve (P(right answer) with 0, 1, … examples)."""
    if len(curve) < 2:
        raise ValueError("a curve needs the zero-shot point and at least one few-shot point")
    zero, few = curve[0], curve[1:]
    best_shots = 1 + max(range(len(few)), key=few.__getitem__)
    best, low, high = few[best_shots - 1], min(curve), max(curve)
    if best - zero >= HELPS:
        kind = "helps"
    elif zero >= KNOWS and high - low < HELPS:
        kind = "knows"
    elif high < FAILS:
        kind = "fails"
    elif zero - min(few) >= HELPS:
        kind = "hurts"
    else:
        kind = "mixed"
    return Effect(kind, zero, best, best_shots, low, high)


def showcase(curves: dict[str, list[float]]) -> str:
    """The task whose examples raise P(right answer) the most: the one that shows what few-shot prompting does."""
    return max(curves, key=lambda name: max(curves[name][1:]) - curves[name][0])


def end_of_turn_ids(tokenizer) -> frozenset[int]:
    """The tokens after which a model's answer is over: its end-of-text token, and for an instruction-tuned model the
    special token its chat template puts right after an assistant's message (SmolLM2's <|im_end|>), found by
    rendering one finished turn."""
    ids = {tokenizer.eot_id} if tokenizer.eot_id is not None else set()
    if tokenizer.chat_template:
        mark = "Glassbox answer"
        text = render_chat(tokenizer.chat_template, [{"role": "user", "content": "Question"},
                                                     {"role": "assistant", "content": mark}],
                           add_generation_prompt=False)
        after = tokenizer.encode_with_special(text.split(mark, 1)[1]) if mark in text else []
        if after and after[0] in set(tokenizer.special_tokens.values()):
            ids.add(after[0])
    return frozenset(ids)


@dataclass(frozen=True)
class Written:
    text: str  # the tokens written, decoded, up to (not including) the end of the turn
    ended: str | None  # the end-of-turn token that ended it, as the tokenizer shows it (None: cut at max_new_tokens)
    unfinished: bytes = b""  # bytes of a last character the tokens did not finish (core.generate.decoded)

    def shown(self) -> str:
        return shown(self.text, self.unfinished)


def write_answer(model: Transformer, prompt_ids: list[int], max_new_tokens: int = 12) -> Written:
    """What the model writes after the prompt, taking the most likely token each time: up to max_new_tokens, cut
    where its turn ends (at the first of end_of_turn_ids; what it would write past it is not its answer)."""
    tok = model.tokenizer
    stops = end_of_turn_ids(tok)
    written = generate(model, prompt_ids, max_new_tokens=max_new_tokens, temperature=0, stop_at_eot=False)
    ids = written.new_ids
    end = next((i for i, t in enumerate(ids) if t in stops), None)
    text, unfinished = decoded(tok, ids if end is None else ids[:end])
    return Written(text, None if end is None else tok.display(ids[end]), unfinished)
