"""The training loop (tiny configs, no full training) and the shipped model; the BPE trainer is in test_bpe.py."""

import dataclasses

import pytest
import torch

from core.config import PRESETS
from core.registry import DEFAULT_MODEL, MODELS_DIR, get, load_model
from core.training import RECIPES, Trainer, init_positions, lr_at, snapshot_schedule, split_stories, windows


def test_windows_and_schedule():
    tokens = torch.arange(100)
    starts = windows(tokens, n_ctx=16, stride=8)
    assert starts.tolist()[:3] == [0, 8, 16] and starts[-1] + 16 + 1 <= 100
    assert lr_at(0, 1e-3, 1e-4, 10, 100) == pytest.approx(1e-4)
    assert lr_at(10, 1e-3, 1e-4, 10, 100) == pytest.approx(1e-3)
    assert lr_at(100, 1e-3, 1e-4, 10, 100) == pytest.approx(1e-4)
    assert snapshot_schedule(2000, 8) == [0, 286, 571, 857, 1143, 1429, 1714, 2000]
    train, val = split_stories([f"s{i}" for i in range(40)], 20)
    assert val == ["s19", "s39"] and not set(train) & set(val)


def tiny_trainer(positional="learned", steps=20):
    cfg = dataclasses.replace(PRESETS["tiny-sinusoidal"], positional=positional, n_ctx=32, dropout=0.1)
    recipe = dataclasses.replace(RECIPES["tiny-stories-1m"], steps=steps, batch_size=8, lr=3e-3, warmup=2, stride=16,
                                 short_ctx=8, short_steps=4)  # the curriculum's short windows for the first 4 steps
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (2000,), generator=g) % 7 * 3  # a learnable pattern
    return Trainer(cfg, tokens, tokens[:500], recipe)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_twenty_steps_lower_the_loss(positional):
    trainer = tiny_trainer(positional)
    losses = [trainer.step() for _ in range(20)]
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5


@pytest.mark.parametrize("stop_at", [2, 5])  # inside the short-window phase, and after it
def test_resume_gives_the_identical_next_step(tmp_path, stop_at):
    a = tiny_trainer()
    for _ in range(stop_at):
        a.step()
    torch.save(a.state(), tmp_path / "state.pt")
    expected = a.step()
    b = tiny_trainer()
    b.load_state(torch.load(tmp_path / "state.pt", weights_only=True))
    assert b.step() == expected
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_curriculum_windows_and_position_learning_rate():
    trainer = tiny_trainer()
    x, y = trainer.short_batch(8)
    assert x.shape == (8 * 32 // 8, 8) and torch.equal(x[:, 1:], y[:, :-1])  # as many tokens as a full batch
    seen = []
    real_forward = trainer.model.forward
    trainer.model.forward = lambda idx, *a, **k: (seen.append(idx.shape[1]), real_forward(idx, *a, **k))[1]
    for _ in range(6):
        trainer.step()
    assert seen == [8, 8, 8, 8, 32, 32]
    pos = trainer.model.pos_embed.weight
    pos_group = [g for g in trainer.optimizer.param_groups if any(p is pos for p in g["params"])]
    assert len(pos_group) == 1 and pos_group[0]["weight_decay"] == 0.0 and len(pos_group[0]["params"]) == 1
    base = trainer.optimizer.param_groups[0]["lr"]
    assert pos_group[0]["lr"] == pytest.approx(base * RECIPES["tiny-stories-1m"].pos_lr_mult)
    plain = Trainer(trainer.cfg, trainer.train_tokens, trainer.val_tokens, dataclasses.replace(trainer.recipe, pos_lr_mult=1.0))
    assert len(plain.optimizer.param_groups) == 2  # without the multiplier the table is an ordinary matrix


shipped = pytest.mark.skipif(not (MODELS_DIR / DEFAULT_MODEL / "config.json").exists(),
                             reason="the embedded model is not in assets/ (run python -m tools.train)")


@shipped
def test_shipped_model_loads_with_its_tokenizer():
    model = load_model()
    assert model.config == PRESETS[DEFAULT_MODEL]
    assert model.tokenizer.n_vocab == model.config.vocab_size
    assert model.tokenizer.decode(model.tokenizer.encode("Once upon a time")) == "Once upon a time"
    history = get(DEFAULT_MODEL).history
    steps = history.steps
    assert 6 <= len(steps) <= 10 and steps[0] == 0
    early = history.load(steps[1], device="cpu")
    assert early.config == model.config


@shipped
def test_shipped_model_passes_the_probes():
    from tools.model_card import PROBES, probe

    model = load_model(device="cpu")
    for prompt, wanted, top, min_p in PROBES:
        result = probe(model, prompt, wanted, top)
        assert result["hit"], result
        assert min_p is None or result["hit"][1] >= min_p, result


def test_position_table_starts_as_waves_that_shift_by_one_rotation():
    trainer = tiny_trainer(steps=0)
    table = trainer.model.pos_embed.weight.detach()
    scale = RECIPES["tiny-stories-1m"].pos_init_scale
    assert torch.allclose(table[0], torch.cat([torch.ones(table.shape[1] // 2), torch.zeros(table.shape[1] // 2)]) * scale)
    gram = table @ table.T  # p_i · p_j depends only on i - j: one "step back" for every position
    for offset in (1, 2, 5):
        diag = gram.diagonal(-offset)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-5)
    assert gram.diagonal(-1)[0] < gram[0, 0] - 1e-3  # neighbours are told apart
    plain = Trainer(trainer.cfg, trainer.train_tokens, trainer.val_tokens, dataclasses.replace(trainer.recipe, pos_init_scale=0.0))
    assert plain.model.pos_embed.weight.std() < 0.05  # not asked for: the usual small random table
    init_positions(plain.model, scale)
    assert torch.equal(plain.model.pos_embed.weight, table)


@shipped
def test_training_log_is_typed_and_validated():
    import json

    from core.training import Recipe, TrainingLog

    raw = json.loads((MODELS_DIR / DEFAULT_MODEL / "training_log.json").read_text())
    log = TrainingLog.from_dict(raw)
    assert log.recipe == RECIPES[DEFAULT_MODEL] and log.config == PRESETS[DEFAULT_MODEL]
    assert TrainingLog.from_dict(log.to_dict()) == log  # what tools.train writes reads back the same
    steps, losses = log.curve("val_loss")
    assert steps[0] == 0 and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="unknown Recipe fields"):
        Recipe.from_dict({**RECIPES[DEFAULT_MODEL].to_dict(), "lr_typo": 1.0})
    with pytest.raises(ValueError, match="steps must be int"):
        Recipe.from_dict({**RECIPES[DEFAULT_MODEL].to_dict(), "steps": "2400"})
    with pytest.raises(ValueError, match="not a training log"):
        TrainingLog.from_dict({k: v for k, v in raw.items() if k != "recipe"})
