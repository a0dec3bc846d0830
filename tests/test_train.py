"""The one training loop (tiny configs, no full training): its recipe, schedule, curriculum, resume and seeding, the
translator and the in-app runs going through it, and the shipped model; the BPE trainer is in test_bpe.py."""

import dataclasses

import pytest
import torch

from core.config import PRESETS
from core.loading.registry import DEFAULT_MODEL, MODELS_DIR, get, load_model
from core.training import (
    RECIPES,
    CorpusBatches,
    Trainer,
    init_positions,
    initial_model,
    lr_at,
    snapshot_schedule,
    split_stories,
    windows,
)


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
    return corpus_trainer(cfg, recipe)


def corpus_trainer(cfg, recipe):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (2000,), generator=g) % 7 * 3  # a learnable pattern
    return Trainer(initial_model(cfg, recipe), recipe, CorpusBatches(tokens, cfg.n_ctx, recipe))


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_twenty_steps_lower_the_loss(positional):
    trainer = tiny_trainer(positional)
    losses = trainer.run()
    assert len(losses) == 20 and sum(losses[-3:]) / 3 < losses[0] - 0.5


@pytest.mark.parametrize("stop_at", [2, 5])  # inside the short-window phase, and after it
def test_resume_gives_the_identical_next_step(tmp_path, stop_at):
    a = tiny_trainer()
    a.run(until=stop_at)
    torch.save(a.state(), tmp_path / "state.pt")
    expected = a.run(until=stop_at + 1)
    b = tiny_trainer()
    b.load_state(torch.load(tmp_path / "state.pt", weights_only=True))
    assert b.run(until=stop_at + 1) == expected and len(expected) == 1
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))


def test_curriculum_windows_and_position_learning_rate():
    trainer = tiny_trainer()
    x, y = trainer.batches.short_batch(8)
    assert x.shape == (8 * 32 // 8, 8) and torch.equal(x[:, 1:], y[:, :-1])  # as many tokens as a full batch
    seen = []
    real_forward = trainer.model.forward
    trainer.model.forward = lambda idx, *a, **k: (seen.append(idx.shape[1]), real_forward(idx, *a, **k))[1]
    trainer.run(until=6)
    assert seen == [8, 8, 8, 8, 32, 32]
    pos = trainer.model.pos_embed.weight
    pos_group = [g for g in trainer.optimizer.param_groups if any(p is pos for p in g["params"])]
    assert len(pos_group) == 1 and pos_group[0]["weight_decay"] == 0.0 and len(pos_group[0]["params"]) == 1
    base = trainer.optimizer.param_groups[0]["lr"]
    assert pos_group[0]["lr"] == pytest.approx(base * RECIPES["tiny-stories-1m"].pos_lr_mult)
    plain = Trainer(trainer.model, dataclasses.replace(trainer.recipe, pos_lr_mult=1.0), trainer.batches)
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
    plain = initial_model(trainer.model.config, dataclasses.replace(trainer.recipe, pos_init_scale=0.0))
    assert plain.pos_embed.weight.std() < 0.05  # not asked for: the usual small random table
    init_positions(plain, scale)
    assert torch.equal(plain.pos_embed.weight, table)


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


def test_the_same_seed_gives_the_same_weights_through_the_loop():
    runs = [tiny_trainer(steps=6) for _ in range(2)]
    assert runs[0].run() == runs[1].run()
    assert all(torch.equal(p, q) for p, q in zip(runs[0].model.parameters(), runs[1].model.parameters()))
    other = corpus_trainer(runs[0].model.config, dataclasses.replace(runs[0].recipe, seed=7))
    other.run()
    assert not torch.equal(other.model.blocks[0].attn.qkv.weight, runs[0].model.blocks[0].attn.qkv.weight)


def test_there_is_one_optimiser_step_in_core_and_tools():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    steps, optimisers = [], []
    for path in sorted([*root.glob("core/**/*.py"), *root.glob("tools/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                where = f"{path.relative_to(root)}:{node.lineno}"
                if node.func.attr == "step" and not node.args:
                    steps.append(where)
                if node.func.attr in ("AdamW", "Adam", "SGD"):
                    optimisers.append(where)
    assert len(steps) == 1 and steps[0].startswith("core/training.py"), steps
    assert len(optimisers) == 1 and optimisers[0].startswith("core/training.py"), optimisers


def test_the_translator_trains_through_the_one_loop_and_loss():
    import torch.nn.functional as F

    from core.seq2seq import EncoderDecoder
    from core.training import loss_on
    from tools.train_translator import RECIPE

    cfg = dataclasses.replace(PRESETS["translator-en-fr"], d_model=32, d_mlp=64, n_layers=1, n_decoder_layers=1,
                              dropout=0.0)  # small for test speed
    torch.manual_seed(0)
    model = EncoderDecoder(cfg)
    src, tgt = torch.randint(3, 60, (4, 6)), torch.randint(3, 60, (4, 7))
    teacher_forced = F.cross_entropy(model(src, tgt[:, :-1]).reshape(-1, cfg.vocab_size), tgt[:, 1:].reshape(-1))
    assert torch.equal(loss_on(model, src, tgt), teacher_forced)
    trainer = Trainer(model, dataclasses.replace(RECIPE, steps=30, warmup=2, lr=3e-3), lambda step: (src, tgt))
    embed = [g for g in trainer.optimizer.param_groups if any(p is model.embed.weight for p in g["params"])]
    assert embed[0]["weight_decay"] == 0.0 and trainer.optimizer.defaults["betas"] == (0.9, 0.98)
    losses = trainer.run()
    assert losses[-1] < losses[0] / 2


def test_a_recipe_reads_back_from_json_and_the_translator_reads_its_shipped_log():
    import json

    from core.training import Recipe
    from tools.train_translator import RECIPE, logged_recipe

    for recipe in (RECIPE, RECIPES["tiny-stories-1m"]):
        assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    log = MODELS_DIR / "translator-en-fr" / "translator_log.json"
    if log.exists():  # written before the one Recipe: its snapshot steps were "snapshots"
        assert logged_recipe(json.loads(log.read_text())["recipe"]) == RECIPE
    with pytest.raises(ValueError, match="betas must be tuple"):
        Recipe.from_dict({**RECIPE.to_dict(), "betas": 0.9})
    with pytest.raises(ValueError, match="files must be tuple"):
        Recipe.from_dict({**RECIPES["tiny-stories-1m"].to_dict(), "files": ["a.txt", 1]})
