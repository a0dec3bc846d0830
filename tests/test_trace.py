"""core.trace.grow: a trace grows with what a view needs — the same numbers as a forward pass that recorded
everything, computed from what the trace kept, with no new forward pass."""

import pytest
import torch

from core import trace
from core.model import DEFAULT_RECORD, PATTERN_RECORD, Transformer
from core.trace import COMPACT_FROM, grow, layer_pattern, layer_patterns, recordable
from tests.conftest import tiny

FAMILIES = ["tiny-sinusoidal", "tiny-llama", "tiny-stories-1m", "tiny-bert"]


@pytest.mark.parametrize("name", FAMILIES)
def test_recordable_lists_what_a_forward_records_in_order(name):
    model = tiny(name, dropout=0.0)
    assert trace(model, list(range(3, 9)), record="*", logits="none").names == recordable(model.config)


@pytest.mark.parametrize("name", FAMILIES)
def test_a_grown_trace_equals_a_forward_that_recorded_everything(name):
    model = tiny(name, dropout=0.0)
    ids = list(range(5, 29))
    decoder = model.config.lm_head
    full = trace(model, ids, record="*", logits="all" if decoder else "none", lens_top_k=3 if decoder else None)
    grown = grow(model, trace(model, ids), "*", logits="all", lens_top_k=3)
    assert grown.names and set(grown.names) == set(full.names)
    for n in full.names:
        torch.testing.assert_close(grown[n], full[n], rtol=0, atol=1e-5, msg=n)
    if decoder:
        torch.testing.assert_close(grown.all_logits, full.all_logits, rtol=0, atol=1e-4)
        assert torch.equal(grown.lens_ids, full.lens_ids)


def test_growing_runs_no_forward_pass_and_only_the_blocks_that_own_a_missing_name(monkeypatch):
    model = tiny("tiny-stories-1m", dropout=0.0)
    tr = trace(model, list(range(40)))
    forwards, blocks = [], []
    monkeypatch.setattr(Transformer, "forward", lambda *a, **k: forwards.append(1))
    for i, block in enumerate(model.blocks):
        original = block.forward
        monkeypatch.setattr(block, "forward", lambda *a, i=i, original=original, **k: blocks.append(i) or original(
            *a, **k))
    grown = grow(model, tr, ("blocks.2.mlp.hook_post", "blocks.3.attn.hook_q"))
    assert forwards == [] and blocks == [2, 3]
    assert grow(model, grown, "blocks.2.mlp.hook_post") is grown and blocks == [2, 3]  # nothing missing: no work


def test_the_original_trace_is_not_changed():
    model = tiny("tiny-llama", dropout=0.0)
    tr = trace(model, list(range(12)))
    names = list(tr.names)
    grow(model, tr, "blocks.*.mlp.hook_post")
    assert tr.names == names


def test_a_long_causal_trace_grows_compact_patterns():
    model = tiny("tiny-stories-1m", dropout=0.0, n_ctx=2 * COMPACT_FROM)
    ids = [i % 200 for i in range(COMPACT_FROM + 40)]
    tr = trace(model, ids, record=("blocks.0.hook_resid_pre", "blocks.*.hook_resid_post"), logits="none")
    grown = grow(model, tr, "blocks.1.attn.hook_pattern")
    assert grown.compact_names == ["blocks.1.attn.hook_pattern"]
    recorded = trace(model, ids, record="blocks.*.attn.hook_pattern")
    torch.testing.assert_close(grown.pattern(1), recorded.pattern(1), rtol=0, atol=1e-3)


def test_an_edited_run_is_not_grown_as_if_it_were_the_plain_model():
    model = tiny("tiny-stories-1m", dropout=0.0)
    off = trace(model, list(range(12)), record=(*DEFAULT_RECORD, "blocks.0.attn.hook_pattern"),
                ablate={"heads": [(0, 1)]})
    with pytest.raises(ValueError, match="edited run"):
        grow(model, off, "blocks.0.attn.hook_z")
    with pytest.raises(ValueError, match="edited run"):
        layer_pattern(model, off, 1)
    assert grow(model, off, "blocks.0.attn.hook_pattern") is off  # what it holds is still served
    assert torch.equal(layer_pattern(model, off, 0), off.pattern(0))


def test_a_trace_without_the_stream_entering_a_block_says_so():
    model = tiny("tiny-stories-1m", dropout=0.0)
    tr = trace(model, list(range(12)), record=("hook_embed",))
    with pytest.raises(ValueError, match="no residual stream entering block 3"):
        grow(model, tr, "blocks.3.mlp.hook_post")


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal", "tiny-bert"])
def test_layer_pattern_is_the_recorded_pattern_computed_from_the_kept_stream(name):
    """The default trace keeps no pattern (attention takes the fused path); any layer's weights come back from the
    stream it kept equal to what a forward pass recording them gives, over all tokens or the first few."""
    model = tiny(name, dropout=0.0)
    ids = [3, 17, 5, 9, 3, 17, 22, 8, 1, 40]
    plain, recorded = trace(model, ids), trace(model, ids, record=(*DEFAULT_RECORD, PATTERN_RECORD))
    assert not any(n.endswith("hook_pattern") for n in plain.names)
    with pytest.raises(KeyError, match="layer_pattern"):
        plain.pattern(0)
    for layer, computed in enumerate(layer_patterns(model, plain)):
        torch.testing.assert_close(computed, recorded.pattern(layer), rtol=0, atol=1e-5)
        torch.testing.assert_close(layer_pattern(model, plain, layer, rows=4), recorded.pattern(layer)[:, :4, :4],
                                   rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="not in this model"):
        layer_pattern(model, plain, model.config.n_layers)


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-bert"])
def test_a_checkpointed_trace_recomputes_the_streams_between_and_any_heads_pattern(name):
    """A long input keeps the stream entering every k-th block only; the stream entering any block and any head's
    pattern come back from the checkpoint below it equal to a forward pass that recorded them."""
    from core.trace import checkpoint_record, head_pattern, stream_into

    model = tiny(name, dropout=0.0)
    ids = [3, 17, 5, 9, 3, 17, 22, 8, 1, 40, 7, 7]
    full = trace(model, ids, record="*")
    light = trace(model, ids, record=checkpoint_record(model.config, every=2))
    assert set(light.names) == {f"blocks.{i}.hook_resid_pre" for i in range(0, model.config.n_layers, 2)}
    for layer in range(model.config.n_layers):
        torch.testing.assert_close(stream_into(model, light, layer), full.resid_pre(layer), rtol=0, atol=1e-5)
        torch.testing.assert_close(head_pattern(model, light, layer, 1), full.pattern(layer)[1], rtol=0, atol=1e-5)
