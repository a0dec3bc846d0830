"""The engine's public calls refuse impossible settings with a clear ValueError before doing any work (a NaN
learning rate used to hand back an all-NaN model silently; a NaN temperature sampled from NaN)."""

import math

import pytest
import torch

from core import generate, load_model, trace
from core.learning import MAX_STEPS, fine_tune, pretrain
from core.loading.integrity import NonFinite
from core.trace import with_attention
from tests.conftest import tiny


@pytest.fixture(scope="module")
def model():
    return load_model(device="cpu")


@pytest.mark.parametrize("lr", [math.nan, math.inf, -1e-3, 0.0, 1e9, 3.0, "0.001", None])
def test_fine_tune_and_pretrain_refuse_a_learning_rate_that_cannot_train(model, lr):
    with pytest.raises(ValueError, match="learning rate"):
        fine_tune(model, ["Once upon a time there was a cat."], steps=2, lr=lr)
    with pytest.raises(ValueError, match="learning rate"):
        pretrain(model.tokenizer, "Once upon a time.\n\nThe end.", steps=2, lr=lr)


@pytest.mark.parametrize("settings, says", [
    (dict(batch_size=0), "batch size"), (dict(batch_size=-3), "batch size"), (dict(batch_size=10**9), "batch size"),
    (dict(steps=0), "steps"), (dict(steps=MAX_STEPS + 1), "steps"), (dict(steps=2.5), "steps"),
])
def test_fine_tune_and_pretrain_refuse_impossible_settings(model, settings, says):
    args = {"steps": 2, **settings}
    with pytest.raises(ValueError, match=says):
        fine_tune(model, ["Once upon a time there was a cat."], **args)
    with pytest.raises(ValueError, match=says):
        pretrain(model.tokenizer, "Once upon a time.\n\nThe end.", **args)


@pytest.mark.parametrize("texts", [[], [""], ["   ", "\n"]])
def test_fine_tune_refuses_empty_text(model, texts):
    with pytest.raises(ValueError, match="nothing to learn from"):
        fine_tune(model, texts, steps=2)


@pytest.mark.parametrize("text", ["", "  \n\n  "])
def test_pretrain_refuses_empty_text(model, text):
    with pytest.raises(ValueError, match="nothing to learn from"):
        pretrain(model.tokenizer, text, steps=2)


def test_fine_tune_refuses_a_string_where_a_list_of_texts_belongs(model):
    with pytest.raises(ValueError, match="list of strings"):
        fine_tune(model, "Once upon a time", steps=2)


def test_a_diverging_training_raises_instead_of_returning_a_nan_model(model, monkeypatch):
    import core.learning as learning

    real = learning.loss_on
    monkeypatch.setattr(learning, "loss_on", lambda *a: real(*a) * float("nan"))
    with pytest.raises(NonFinite, match="diverged at step 1"):
        fine_tune(model, ["Once upon a time there was a cat."], steps=3)


def test_valid_settings_still_train(model):
    tuned = fine_tune(model, ["Once upon a time there was a cat."], steps=2, lr=1e-3, batch_size=1)
    assert len(tuned.losses) == 2 and all(math.isfinite(x) for x in tuned.losses)


@pytest.mark.parametrize("settings, says", [
    (dict(temperature=math.nan), "temperature must be a finite"), (dict(temperature=math.inf), "finite"),
    (dict(temperature=-1.0), "temperature must be ≥ 0"), (dict(top_p=math.nan), "top_p must be a finite"),
    (dict(top_p=math.inf), "finite"), (dict(top_p=1.5), "top_p between 0 and 1"), (dict(top_p=-0.1), "top_p"),
    (dict(max_new_tokens=-1), "max_new_tokens"), (dict(top_k=-5), "top_k"),
])
def test_generate_refuses_impossible_sampling_settings(model, settings, says):
    with pytest.raises(ValueError, match=says):
        generate(model, "Once upon a time", **{"max_new_tokens": 2, **settings})


@pytest.mark.parametrize("ids", [[-1], [0, 2048], [10**12], [5, 6, -7]])
def test_generate_refuses_prompt_ids_outside_the_vocabulary(model, ids):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        generate(model, ids, max_new_tokens=2)


def test_generate_with_valid_settings_still_samples(model):
    out = generate(model, [1, 2, 3], max_new_tokens=2, temperature=0.0, top_p=1.0, seed=0)
    assert len(out.new_ids) == 2


@pytest.mark.parametrize("layer", [-1, 4, 100])
def test_with_attention_refuses_a_layer_outside_the_model(model, layer):
    tr = trace(model, "Once upon a time", record=("blocks.*.hook_resid_pre",))
    with pytest.raises(ValueError, match="not in this model"):
        with_attention(model, tr, layer)


@pytest.mark.parametrize("max_tokens", [0, -5])
def test_trace_refuses_max_tokens_of_zero_or_less(model, max_tokens):
    with pytest.raises(ValueError, match="max_tokens must be a positive"):
        trace(model, "Once upon a time", max_tokens=max_tokens)


def test_load_model_refuses_a_10000_character_name():
    with pytest.raises(ValueError, match="10,000 characters") as caught:
        load_model("x" * 10_000)
    assert len(str(caught.value)) < 300, "the name is not echoed back"
    with pytest.raises(ValueError, match="unknown model"):
        load_model("y" * 500)


def test_a_tiny_model_traces_after_all_these_refusals():
    assert torch.isfinite(trace(tiny("tiny-llama"), list(range(10))).logits).all()
