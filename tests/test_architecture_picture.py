"""The architecture picture (core.interpret.architecture, pages/common/architecture.py): every number on it is the trace's
own — strips are the recorded tensors in cells, lengths their norms, the softmax the model's — the structure is the
model's (pre- vs post-norm, RoPE, BERT's segment and embedding norm, an encoder's end, the encoder–decoder's two
stacks), and the Forward pass page draws it with one line per block."""

import numpy as np
import pytest
import torch

from core import trace
from core.interpret.architecture import (
    CELLS,
    LESSON_PARTS,
    SEQ2SEQ_RECORD,
    architecture,
    architecture_record,
    block_of,
    lesson_part,
    part_id,
    seq2seq_architecture,
    strip,
)
from core.loading.registry import load_model
from core.trace import grow, hook
from pages.common import architecture as picture
from tests.conftest import tiny
from tests.test_app import PACKAGED, app, charts, open_page


def strip_cells(fig, name: str) -> tuple[list[float], list[str]]:
    """The drawn values and hover texts of part `name`'s strip, read back from the one strips heatmap (a cell split by
    another strip's edges spans several grid columns with one hover text)."""
    trace = next(t for t in fig.data if isinstance(t.meta, dict) and t.meta.get("name") == picture.STRIPS)
    r, c0, n = trace.meta["parts"][name]
    cells, seen = [], []
    for j in range(c0, len(trace.z[r])):
        if len(cells) == n:
            break
        if not seen or trace.text[r][j] != seen[-1]:
            cells.append(trace.z[r][j])
            seen.append(trace.text[r][j])
    return cells, seen


def labels_of(fig) -> list[str]:
    """Every label's text in the picture (a figure, or the dict a page sent to the browser)."""
    data = fig["data"] if isinstance(fig, dict) else [t.to_plotly_json() for t in fig.data]
    return [str(t) for trace in data if trace.get("meta") == picture.LABELS for t in trace.get("text", [])]

TEXT = [5, 17, 3, 42, 8, 11, 29]  # token ids: the tiny test models have no tokenizer


def traced(model, open_block=None):
    return grow(model, trace(model, TEXT), architecture_record(model.config, open_block))


def same(a, vector: torch.Tensor) -> None:
    """A strip is the vector: each cell the mean of its run, the length its norm, the size its size."""
    expected = strip(vector)
    assert a.size == vector.numel() and a.starts == expected.starts
    assert a.norm == pytest.approx(float(vector.norm()), rel=1e-6)
    assert a.cells == pytest.approx(expected.cells, abs=1e-6)


def test_a_strip_is_the_vector_in_runs_of_numbers():
    v = torch.arange(70, dtype=torch.float32) - 30
    s = strip(v, cells=32)
    assert len(s.cells) == 32 and s.size == 70 and s.norm == pytest.approx(float(v.norm()))
    runs = [s.run(i) for i in range(32)]
    assert runs[0][0] == 0 and runs[-1][1] == 69
    assert all(b + 1 == c for (_, b), (c, _) in zip(runs, runs[1:])), "runs cover every number once"
    for i, (a, b) in enumerate(runs):
        assert s.cells[i] == pytest.approx(float(v[a : b + 1].mean()))
    short = strip(torch.tensor([1.0, -2.0, 3.0]))
    assert short.cells == (1.0, -2.0, 3.0), "a vector shorter than the strip is drawn number by number"


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal", "tiny-bert"])
def test_every_value_on_the_picture_is_the_recorded_tensor(name):
    model = tiny(name, dropout=0.0)
    cfg = model.config
    tr = traced(model, open_block=1)
    pos = 4
    arch = architecture(model, tr, pos, open_block=1)
    parts = arch.parts
    same(parts["embed"].strip, tr["hook_embed"][pos])
    if cfg.positional == "rope":
        assert parts["pos"].kind == "rope" and parts["pos"].strip is None
    else:
        same(parts["pos"].strip, tr["hook_pos_embed"][pos])
    for row in arch.blocks:
        i = row.layer
        same(row.stream, tr.resid_post(i)[pos])
        assert row.added["attn"] == pytest.approx(float(tr.attn_out(i)[pos].norm()), rel=1e-6)
        assert row.added["mlp"] == pytest.approx(float(tr.mlp_out(i)[pos].norm()), rel=1e-6)
    z = tr.z(1)[pos]
    for h in range(cfg.n_heads):
        same(parts[f"blocks.1.attn.{h}"].strip, z[h])
    same(parts["blocks.1.attn"].strip, tr.attn_out(1)[pos])
    same(parts["blocks.1.mlp"].strip, tr.mlp_out(1)[pos])
    same(parts["blocks.1.mlp.units"].strip, tr.mlp_post(1)[pos])
    fired = int((tr.mlp_pre(1)[pos] > 0).sum())
    assert parts["blocks.1.mlp.units"].note.startswith(f"{fired:,} of {cfg.mlp_dim:,}")
    if cfg.post_norm:  # the add, then the norm on the stream
        same(parts["blocks.1.add1"].strip, tr.resid_pre(1)[pos] + tr.attn_out(1)[pos])
        same(parts["blocks.1.ln1"].strip, tr.resid_mid(1)[pos])
        same(parts["blocks.1.ln2"].strip, tr.resid_post(1)[pos])
    else:  # the norm feeds the sublayer; the add is the stream
        same(parts["blocks.1.ln1"].strip, tr[hook(1, "ln1.hook_normalized")][pos])
        same(parts["blocks.1.add1"].strip, tr.resid_mid(1)[pos])
        same(parts["blocks.1.add2"].strip, tr.resid_post(1)[pos])
        same(parts["ln_final"].strip, tr["ln_final.hook_normalized"][pos])


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama"])
def test_the_softmax_is_the_models_next_token_distribution(name):
    model = tiny(name, dropout=0.0)
    tr = traced(model)
    last = architecture(model, tr, tr.n_tokens - 1)
    probs = tr.probs
    top = probs.topk(5)
    assert [t[0] for t in last.top] == top.indices.tolist()
    assert [t[3] for t in last.top] == pytest.approx(top.values.tolist(), abs=1e-7)
    assert [t[2] for t in last.top] == pytest.approx(tr.logits[top.indices].tolist(), abs=1e-6)
    every = trace(model, TEXT, logits="all").all_logits  # an earlier token: its own next-token distribution
    earlier = architecture(model, tr, 2)
    expected = every[2].softmax(-1).topk(5)
    assert [t[0] for t in earlier.top] == expected.indices.tolist()
    assert [t[3] for t in earlier.top] == pytest.approx(expected.values.tolist(), abs=1e-5)


def test_the_order_of_norm_and_add_is_the_models_own():
    pre = architecture(m := tiny("tiny-stories-1m", dropout=0.0), traced(m, 0), 3, open_block=0)
    edges = [(e.source, e.target, e.kind) for e in pre.edges]
    assert ("blocks.0.in", "blocks.0.ln1", "flow") in edges and ("blocks.0.ln1", "blocks.0.attn", "flow") in edges
    assert ("blocks.0.in", "blocks.0.add1", "residual") in edges, "the stream skips attention to its add"
    assert [n for n in pre.parts][-3:] == ["ln_final", "unembed", "softmax"]
    bert = tiny("tiny-bert", dropout=0.0)
    post = architecture(bert, traced(bert, 0), 3, open_block=0)
    edges = [(e.source, e.target, e.kind) for e in post.edges]
    assert ("blocks.0.in", "blocks.0.attn", "flow") in edges and ("blocks.0.add1", "blocks.0.ln1", "flow") in edges
    assert {"segment", "ln_embed", "output"} <= set(post.parts) and "softmax" not in post.parts and not post.top
    assert post.kind == "encoder"
    llama = tiny("tiny-llama", dropout=0.0)
    rope = architecture(llama, traced(llama), 3)
    assert ("pos", "blocks.1", "rotary") in [(e.source, e.target, e.kind) for e in rope.edges]
    assert "2 key/value heads" in rope.parts["blocks.1"].width or "RoPE" in rope.parts["pos"].width


def test_a_trace_without_the_blocks_adds_is_refused():
    model = tiny("tiny-stories-1m", dropout=0.0)
    with pytest.raises(ValueError, match="architecture_record"):
        architecture(model, trace(model, TEXT), 2)
    with pytest.raises(ValueError, match="architecture_record"):  # the open block's heads were not grown
        architecture(model, traced(model), 2, open_block=3)


def test_a_highlight_lights_the_part_and_what_is_inside_it():
    model = tiny("tiny-stories-1m", dropout=0.0)
    arch = architecture(model, traced(model, 0), 6, open_block=0)
    assert arch.lit("blocks.0.attn") == {"blocks.0.attn", *(f"blocks.0.attn.{h}" for h in range(4))}
    assert arch.lit("blocks.2.mlp") == {"blocks.2"}, "inside a closed block: the block's line"
    assert arch.lit("embed") == {"embed"} and arch.lit(None) == set()
    assert lesson_part("qkv", head=3) == "blocks.0.attn.3"
    assert lesson_part("final_norm", post_norm=True) == "output"
    for step in LESSON_PARTS:  # every lesson step lights a part that exists (decoder or encoder)
        part = lesson_part(step)
        assert arch.lit(part) or part == "output", step
    fig = picture.figure(arch, highlight="blocks.0.attn.2")
    assert any(s.line.color == picture.LIT for s in fig.layout.shapes)


def test_part_names_are_the_pictures_own_and_read_back():
    model = tiny("tiny-llama", dropout=0.0)
    arch = architecture(model, traced(model, 1), 4, open_block=1)
    built = {part_id(i) for i in range(model.config.n_layers) if i != 1} | {part_id(1, "attn", h) for h in range(model.config.n_heads)} | {
        part_id(1, inside) for inside in ("in", "ln1", "attn", "add1", "ln2", "mlp", "mlp.units", "add2")}
    assert built <= set(arch.parts) and {n for n in arch.parts if n.startswith("blocks.")} == built
    assert all(block_of(n) == arch.parts[n].layer for n in built) and block_of("ln_final") is None
    assert block_of("decoder.blocks.1") is None and part_id(1, root="decoder.") == "decoder.blocks.1"
    with pytest.raises(ValueError):
        part_id(1, "mlp", head=2)


def test_the_figure_draws_every_part_and_one_line_per_closed_block():
    model = tiny("tiny-stories-1m", dropout=0.0)
    arch = architecture(model, traced(model, 2), 6, open_block=2)
    fig = picture.figure(arch)
    targets = next(t for t in fig.data if t.meta == "targets")
    assert set(targets.customdata) == set(arch.parts)
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 1, "every strip in one heatmap: one canvas for the browser to draw"
    assert set(heatmaps[0].meta["parts"]) >= {"blocks.0", "blocks.1", "blocks.3", "blocks.2.attn.3", "ln_final"}
    for name, row in (("blocks.3", arch.blocks[3].stream), ("blocks.2.attn.3", arch.parts["blocks.2.attn.3"].strip)):
        values, hovers = strip_cells(fig, name)
        scale = max(abs(v) for v in row.cells)
        assert values == pytest.approx([v / scale for v in row.cells]), "each strip on its own scale"
        assert f"{row.norm:.3f}" in hovers[0] and len(values) == CELLS
    z = np.array(heatmaps[0].z, dtype=float)
    assert np.isfinite(z).sum() == CELLS * len(heatmaps[0].meta["parts"]), "a cell per strip cell, gaps elsewhere"
    labels = labels_of(fig)
    assert "<b>Block 2</b> (open)" in labels and "Block 3" in labels and not fig.layout.annotations[0].text, \
        "every label in the text trace; annotations only for arrows"


def test_a_click_opens_the_parts_page_at_its_layer():
    model = tiny("tiny-stories-1m", dropout=0.0)
    arch = architecture(model, traced(model, 1), 6, open_block=1)
    assert picture.target(arch, "blocks.1.attn.2") == ("attention", {"layer": 1, "head": 2})
    assert picture.target(arch, "blocks.3") == ("attention", {"layer": 3})
    assert picture.target(arch, "blocks.1.mlp") == ("feed_forward", {"ff.layer": 1})
    assert picture.target(arch, "blocks.1.ln2") == ("residual", {"res.norm": "blocks.1.ln2"})
    assert picture.target(arch, "ln_final") == ("residual", {"res.norm": "ln_final"})
    assert picture.target(arch, "softmax")[0] == "next_token" and picture.target(arch, "pos")[0] == "positions"


def test_the_encoder_decoder_is_drawn_as_two_stacks_with_cross_attention():
    from core.seq2seq import run, translate

    model = load_model("translator-en-fr")
    done = translate(model, "the small girl sees a red car").trace
    tr = run(model, done.source_ids, done.target_ids, record=SEQ2SEQ_RECORD)
    arch = seq2seq_architecture(model, tr)
    cfg = model.config
    assert arch.kind == "encoder-decoder" and len(arch.blocks) == cfg.n_layers
    assert len(arch.decoder_blocks) == cfg.n_decoder_layers
    crosses = [e for e in arch.edges if e.kind == "cross"]
    assert [(e.source, e.target) for e in crosses] == [("encoder.output", f"decoder.blocks.{i}")
                                                       for i in range(cfg.n_decoder_layers)]
    s, t = arch.source_position, arch.position
    assert arch.source_tokens[s] == "car" and arch.tokens[t] == "voiture"
    same(arch.parts["encoder.output"].strip, tr[f"encoder.blocks.{cfg.n_layers - 1}.hook_resid_post"][s])
    for row in arch.decoder_blocks:
        assert row.added["cross"] == pytest.approx(float(tr[f"decoder.blocks.{row.layer}.hook_cross_attn_out"][t]
                                                         .norm()), rel=1e-6)
    probs = tr.probs[t]
    assert arch.top[0][1] == "rouge" and arch.top[0][3] == pytest.approx(float(probs.max()), abs=1e-6)
    fig = picture.figure(arch)
    assert "encoder–decoder" in fig.layout.title.text
    assert set(next(t for t in fig.data if t.meta == "targets").customdata) >= {"encoder.output", "decoder.blocks.1"}


def picture_of(at) -> dict:
    return next(c for c in charts(at) if any(t.get("meta") == "targets" for t in c["data"]))


def drawn_parts(chart: dict) -> list[str]:
    return next(t for t in chart["data"] if t.get("meta") == "targets")["customdata"]


def test_forward_pass_draws_the_decoder_with_one_line_per_block():
    at = open_page(app(text="Lily and Tom went to the park to play."), "pages/forward_pass.py")
    chart = picture_of(at)
    parts = drawn_parts(chart)
    blocks = {int(p.split(".")[1]) for p in parts if p.startswith("blocks.")}
    assert blocks == set(range(4)) and "blocks.0.attn.3" in parts, "4 blocks, block 0 open to its 4 heads"
    assert [p for p in parts if p.count(".") == 1] == ["blocks.1", "blocks.2", "blocks.3"]
    assert {"tokens", "embed", "pos", "ln_final", "unembed", "softmax"} <= set(parts)
    assert "a decoder: 4 blocks" in chart["layout"]["title"]["text"]
    model = load_model("tiny-stories-1m")
    tr = trace(model, "Lily and Tom went to the park to play.")
    from pages.common.html import visible

    top = visible(model.tokenizer.display(int(tr.logits.argmax())))
    assert any(top in text for text in labels_of(chart)), "the real next token"
    at.selectbox(key="fp.arch.block").set_value(2).run()
    parts = drawn_parts(picture_of(at))
    assert "blocks.2.attn.0" in parts and "blocks.0" in parts and "blocks.0.attn" not in parts


@PACKAGED
def test_forward_pass_draws_the_encoder_as_an_encoder():
    at = open_page(app(model="minilm-l6", text="Lily and Tom went to the park to play."), "pages/forward_pass.py")
    chart = picture_of(at)
    parts = drawn_parts(chart)
    assert {int(p.split(".")[1]) for p in parts if p.startswith("blocks.")} == set(range(6))
    assert len([p for p in parts if p.startswith("blocks.0.attn.")]) == 12, "12 heads in the open block"
    assert {"segment", "ln_embed", "output"} <= set(parts) and not {"unembed", "softmax", "ln_final"} & set(parts)
    assert "an encoder: 6 blocks" in chart["layout"]["title"]["text"] and "post-norm" in chart["layout"]["title"]["text"]
    texts = " ".join(labels_of(chart))
    assert "[play]" not in texts and "[.]" in texts, "the last word before [SEP] is followed"
