"""Fine-tuning a copy and pretraining from random weights (runs of core.training's one loop), prompting changes no
weight, and the KV cache."""

import math

import pytest
import torch

import core.learning as learning
from core import load_model, trace
from core.generate import greedy, kv_cache_bytes
from core.learning import continuation_prob, fine_tune, fingerprint, pretrain, shipped_text, text_loss, weight_change
from tests.conftest import tiny

FACT = ["The dragon's name is Zorbo. Zorbo lives in a cave.", "Everyone knows that the dragon's name is Zorbo."]


@pytest.fixture(scope="module")
def embedded():
    return load_model(device="cpu")


@pytest.mark.slow  # fine-tunes the embedded model
def test_fine_tuning_learns_the_fact_and_leaves_the_model_untouched(embedded):
    before = fingerprint(embedded)
    p_before = continuation_prob(embedded, "The dragon's name is", " Zorbo")
    seen = []
    tuned = fine_tune(embedded, FACT, steps=40, lr=1e-3, progress=lambda step, loss: seen.append((step, loss)))
    assert fingerprint(embedded) == before, "the shared model is bit-identical afterwards"
    assert [s for s, _ in seen] == list(range(1, 41)) and seen[-1][1] < seen[0][1] / 5
    p_after = continuation_prob(tuned, "The dragon's name is", " Zorbo")
    assert p_after / p_before > 1000 and p_after > 0.5
    assert tuned.tokenizer is embedded.tokenizer and not any(p.requires_grad for p in tuned.parameters())
    moved = weight_change(embedded, tuned)
    assert {"embed", "pos_embed", "blocks.0.attn", "blocks.3.mlp", "blocks.0.norms", "ln_final"} <= set(moved)
    assert all(v > 0 for v in moved.values())
    held_out = shipped_text(learning.HELD_OUT_TEXT)
    assert text_loss(tuned, held_out) > text_loss(embedded, held_out), "forgetting is measured, not assumed"


def test_fine_tuning_is_seeded(embedded):
    a = fine_tune(embedded, FACT, steps=5, seed=3)
    b = fine_tune(embedded, FACT, steps=5, seed=3)
    c = fine_tune(embedded, FACT, steps=5, seed=4)
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_fine_tuning_is_a_run_of_the_one_loop_reporting_each_step(embedded, monkeypatch):
    import core.training as training

    small = tiny("tiny-stories-1m", d_model=32, n_layers=1, n_heads=2)  # dropout on: small for test speed
    small.tokenizer = embedded.tokenizer
    runs, seen = [], []
    real_run = training.Trainer.run
    monkeypatch.setattr(training.Trainer, "run", lambda self, **kw: (runs.append(self.recipe), real_run(self, **kw))[1])
    torch.manual_seed(5)
    tuned = fine_tune(small, FACT, steps=6, lr=3e-3, seed=2, batch_size=4,
                      progress=lambda step, loss: seen.append((step, loss)))
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3)), "the caller's random stream is left where it was"
    assert [(r.steps, r.lr, r.min_lr, r.warmup, r.seed, r.batch_size) for r in runs] == [(6, 3e-3, 3e-3, 0, 2, 4)]
    assert seen == list(enumerate(tuned.losses, start=1)), "the live curve gets every step's loss"
    assert tuned.losses == fine_tune(small, FACT, steps=6, lr=3e-3, seed=2, batch_size=4).losses


def test_fine_tuning_limits(embedded, monkeypatch):
    with pytest.raises(ValueError, match="nothing to learn"):
        fine_tune(embedded, ["", "  "], steps=3)
    with pytest.raises(ValueError, match="steps"):
        fine_tune(embedded, FACT, steps=learning.MAX_STEPS + 1)
    monkeypatch.setattr(learning, "FINE_TUNE_MAX_PARAMS", 1000)
    with pytest.raises(ValueError, match="up to 1,000"):
        fine_tune(embedded, FACT, steps=3)


@pytest.mark.slow  # pretrains a tiny model
def test_pretraining_starts_at_ln_vocabulary_and_learns(embedded):
    run = pretrain(embedded.tokenizer, shipped_text(), steps=150, n_snapshots=4)
    assert run.losses[0] == pytest.approx(math.log(embedded.tokenizer.n_vocab), abs=0.1)
    assert run.losses[-1] < run.losses[0] - 2.5
    assert run.steps == [0, 50, 100, 150]
    first, last = run.model(0), run.model(150)
    text = "Once upon a time"
    assert text_loss(last, shipped_text()[:3000]) < text_loss(first, shipped_text()[:3000]) - 2
    assert trace(last, text).logits.shape == (embedded.tokenizer.n_vocab,)
    again = pretrain(embedded.tokenizer, shipped_text(), steps=20, n_snapshots=2)
    assert again.losses == pretrain(embedded.tokenizer, shipped_text(), steps=20, n_snapshots=2).losses


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal"])
def test_cached_and_uncached_generation_give_the_same_tokens(name):
    model = tiny(name, dropout=0.0)
    with_cache = greedy(model, [5, 9, 3, 7], 12, use_cache=True)
    without = greedy(model, [5, 9, 3, 7], 12, use_cache=False)
    assert with_cache.new_ids == without.new_ids and len(with_cache.new_ids) == 12


def test_kv_cache_bytes_and_gqa():
    llama = tiny("tiny-llama").config  # 4 query heads share 2 key/value heads
    assert kv_cache_bytes(llama, 10) == 2 * 2 * 2 * 16 * 10 * 4
    full = tiny("tiny-llama", n_kv_heads=4).config
    assert kv_cache_bytes(full, 10) == 2 * kv_cache_bytes(llama, 10)


def test_prompting_changes_no_weight(embedded):
    before = fingerprint(embedded)
    continuation_prob(embedded, "Q: 2 + 2? A: 4. Q: 3 + 3? A:", " 6")
    assert fingerprint(embedded) == before
    assert fingerprint(embedded) != fingerprint(fine_tune(embedded, FACT, steps=1))
    assert 0 < continuation_prob(embedded, "Once upon a", " time") <= 1
    assert torch.isfinite(torch.tensor(text_loss(embedded, "Once upon a time there was a cat.")))
