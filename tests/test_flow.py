"""The information-flow graph (core.interpret.flow): every stream's parts add up to the stream the model recorded, each stream's
shares add up to 1, the graph follows its threshold, on tiny seeded models of every family and the embedded model —
and the flow is read from one trace grown without a new forward pass."""

import pytest
import torch

from core import trace
from core.interpret.flow import (
    attention_parts,
    contribution_flow,
    describe_flow,
    flow_record,
    mlp_parts,
    routes,
    shares,
)
from core.loading.registry import load_model
from core.model import Recorder
from core.trace import grow, hook
from tests.conftest import tiny
from tests.test_app import PACKAGED

FAMILIES = ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal", "tiny-bert"]
IDS = [5, 17, 301, 44, 9, 17, 301, 2, 60, 7]


def model_of(name: str):
    model = tiny(name, dropout=0.0)
    if model.config.post_norm:  # a norm's γ = 1, β = 0 at init would hide a wrong decomposition
        g = torch.Generator().manual_seed(3)
        for block in model.blocks:
            for norm in (block.ln1, block.ln2):
                norm.weight.copy_(1 + 0.3 * torch.randn(norm.weight.shape, generator=g))
                norm.bias.copy_(0.2 * torch.randn(norm.bias.shape, generator=g))
    return model


def grown(model):
    return grow(model, trace(model, IDS), flow_record(model.config.post_norm))


@pytest.mark.parametrize("name", FAMILIES)
def test_the_parts_add_up_to_the_streams_the_model_recorded(name):
    model = model_of(name)
    tr = grown(model)
    for layer in range(model.config.n_layers):
        a = attention_parts(model, tr, layer)
        total = a.residual + a.heads().sum((1, 2)) + (a.constant if a.constant is not None else 0)
        assert torch.allclose(total, tr.resid_mid(layer), atol=1e-5)
        m = mlp_parts(model, tr, layer)
        total = m.residual + m.parts + (m.constant if m.constant is not None else 0)
        assert torch.allclose(total, tr.resid_post(layer), atol=1e-5)


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama"])
def test_each_heads_parts_add_up_to_what_the_head_wrote(name):
    """Σ over keys of head h's parts = the recorded z of head h times its slice of the output projection."""
    model = model_of(name)
    full = trace(model, IDS, record="*")
    cfg = model.config
    for layer in range(cfg.n_layers):
        per_head = attention_parts(model, full, layer).heads().sum(1)  # (T, nh, d)
        w_o = model.blocks[layer].attn.out.weight.view(cfg.d_model, cfg.n_heads, cfg.head_dim)
        expected = torch.einsum("ths,dhs->thd", full.z(layer), w_o)
        assert torch.allclose(per_head, expected, atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_every_nodes_shares_sum_to_one(name):
    flow = contribution_flow(model_of(name), grown(model_of(name)))
    into_attention, into_ffn = flow.node_sums()
    assert torch.allclose(into_attention, torch.ones_like(into_attention), atol=1e-5)
    assert torch.allclose(into_ffn, torch.ones_like(into_ffn), atol=1e-5)
    assert (flow.attn >= 0).all() and (flow.mlp >= 0).all()


def test_the_embedded_models_shares_sum_to_one_and_later_tokens_give_nothing():
    model = load_model("tiny-stories-1m")
    tr = grow(model, trace(model, "Lily found a ball. She picked up the"), flow_record())
    flow = contribution_flow(model, tr)
    for sums in flow.node_sums():
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
    later = torch.triu(torch.ones(tr.n_tokens, tr.n_tokens, dtype=torch.bool), diagonal=1)
    assert flow.attn[:, later].abs().max() == 0  # a causal model's query never reads a later key


def test_a_share_is_the_proximity_measure():
    whole = torch.tensor([3.0, 1.0])
    parts = torch.tensor([[2.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])  # the last points away: share 0
    # proximities: 4 − |1|−|1| = 2, 4 − 2 − 0 = 2, 4 − 4 − 1 < 0 → 0
    assert shares(whole, parts).tolist() == pytest.approx([0.5, 0.5, 0.0])


def test_the_flow_grows_from_the_default_trace_without_a_new_forward():
    model = model_of("tiny-llama")
    tr = trace(model, IDS)
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))  # a private test model: nobody shares it
    grown_flow = contribution_flow(model, grow(model, tr, flow_record()))
    assert not calls, "grow runs single blocks, never the whole model"
    direct = contribution_flow(model, trace(model, IDS, record=flow_record()))
    assert torch.allclose(grown_flow.attn, direct.attn, atol=1e-6)
    assert torch.allclose(grown_flow.mlp, direct.mlp, atol=1e-6)


def test_the_flow_needs_what_it_records():
    model = model_of("tiny-llama")
    with pytest.raises(KeyError, match="was not recorded"):
        contribution_flow(model, trace(model, IDS))
    assert Recorder(flow_record()).wants(hook(1, "attn.hook_v"))


def test_the_graph_keeps_the_edges_above_the_threshold_that_lead_to_the_followed_stream():
    model = model_of("tiny-stories-1m")
    flow = contribution_flow(model, grown(model))
    last = flow.n_tokens - 1
    loose, strict = routes(flow, last, 0.02), routes(flow, last, 0.2)
    assert all(e.share > 0.2 for e in strict) and len(strict) < len(loose)
    assert {(e.source, e.target) for e in strict} <= {(e.source, e.target) for e in loose}
    targets = {e.target for e in loose}
    top = ("ffn", flow.n_layers - 1, last)
    assert all(e.target == top or e.target in {f.source for f in loose} for e in loose), "every edge leads on"
    assert top in targets
    assert all(e.source[2] <= e.target[2] for e in loose if e.kind == "attention"), "causal: rightwards only"
    for e in loose:
        if e.kind == "attention":
            assert sum(w for _, w in e.heads) == pytest.approx(e.share, abs=0.005 * flow.attn.shape[-1])
    with pytest.raises(ValueError, match="not in the text"):
        routes(flow, flow.n_tokens, 0.04)


def test_an_encoder_can_follow_any_token_and_reads_both_ways():
    model = model_of("tiny-bert")
    flow = contribution_flow(model, grown(model))
    assert (flow.attn[:, 2, 3:] > 0).any(), "a token reads the tokens after it"
    edges = routes(flow, 2, 0.0)
    assert any(e.kind == "attention" and e.source[2] > e.target[2] for e in edges)
    words = describe_flow(flow, 2, 0.01, [str(i) for i in IDS], None)
    assert "the final vector of “301” (position 2)" in words[0]


def test_the_graph_is_read_in_words():
    model = load_model("tiny-stories-1m")
    tr = grow(model, trace(model, "Lily found a ball. She picked up the"), flow_record())
    flow = contribution_flow(model, tr)
    words = describe_flow(flow, tr.n_tokens - 1, 0.04, tr.tokens, "“ ball”")
    assert words[0].startswith("At threshold 0.04,") and "the prediction of “ ball”" in words[0]
    here = flow.at_position(tr.n_tokens - 1)
    layer = int(here["attention to other tokens"].argmax())
    assert f"brings the most in block {layer} ({float(here['attention to other tokens'][layer]):.0%}" in words[2]
    assert f"pass the threshold in {int((here['feed-forward block'] > 0.04).sum())} of 4 blocks" in words[3]


@PACKAGED
def test_smollm2_brings_the_country_into_the_last_token_late():
    """SmolLM2 on "The capital of France is": the strongest attention into the last position comes from " France",
    in the second half of its 30 blocks — where activation patching sees the fact move (issue's measurement)."""
    model = load_model("smollm2-135m")
    tr = grow(model, trace(model, "The capital of France is"), flow_record())
    flow = contribution_flow(model, tr)
    for sums in flow.node_sums():
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)
    into_last = flow.attn[:, 4, :4].sum(-1)  # (L, key)
    layer, key = divmod(int(into_last.argmax()), 4)
    assert tr.tokens[key] == " France" and layer >= 15
