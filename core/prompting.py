"""Zero- and few-shot prompting: the same question with 0, 1, 2 … worked examples before it, and the probability the
model gives the right answer each time. In-context learning changes the prompt, never a weight.

The tasks and their examples are written for Glassbox (short, unambiguous, one right answer).
"""

from __future__ import annotations

from dataclasses import dataclass

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
