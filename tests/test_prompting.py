"""core.prompting: what a zero- to few-shot curve shows is read from its numbers, the task that shows the effect is
picked by measuring, and what a chat model writes ends where its turn ends."""

import pytest

from core.prompting import TASKS, few_shot, shots_effect, showcase, write_answer
from tests.test_app import PACKAGED


@pytest.mark.parametrize("curve, kind", [
    ([0.22, 0.91, 0.90, 0.75, 0.89, 0.76], "helps"),  # SmolLM2 on sentiment
    ([0.98, 0.99, 0.99, 0.99, 0.97, 0.98], "knows"),  # SmolLM2 on capital cities
    ([0.001, 0.001, 0.001, 0.004, 0.003, 0.003], "fails"),  # SmolLM2 on English → French
    ([0.8, 0.5, 0.4, 0.45, 0.5, 0.5], "hurts"),
    ([0.3, 0.4, 0.25, 0.35, 0.3, 0.4], "mixed"),
])
def test_what_a_curve_shows_is_read_from_its_numbers(curve, kind):
    effect = shots_effect(curve)
    assert effect.kind == kind and effect.zero == curve[0]
    assert effect.best == max(curve[1:]) == curve[effect.best_shots]
    assert (effect.low, effect.high) == (min(curve), max(curve))


def test_the_showcase_is_the_task_the_examples_help_most():
    curves = {"a": [0.98, 0.99, 0.98], "b": [0.22, 0.91, 0.9], "c": [0.001, 0.003, 0.002]}
    assert showcase(curves) == "b"


@PACKAGED
def test_a_chat_answer_ends_at_the_end_of_its_turn():
    from core.loading import registry
    from core.prompting import end_of_turn_ids

    model = registry.load_model("smollm2-135m")
    tok = model.tokenizer
    assert end_of_turn_ids(tok) == {tok.special_tokens["<|im_end|>"], tok.eot_id}
    prompt = few_shot(TASKS["Capital cities"], 2, tok.chat_template)
    written = write_answer(model, tok.encode_with_special(prompt.text), 24)
    assert written.ended == "<|im_end|>" and "<|im" not in written.text and written.text.strip()


def test_a_model_without_a_chat_template_stops_only_at_end_of_text():
    from core.loading import registry
    from core.prompting import end_of_turn_ids

    tok = registry.load_model("tiny-stories-1m").tokenizer
    assert end_of_turn_ids(tok) == {tok.eot_id}
