"""The codebase's seams: the recorded-name table is true, cached traces are read-only, the registry is the one list
of models, pages use core's API (no recorded names, weights or masks of their own), the generation tree."""

import ast
import re
from pathlib import Path

import pytest
import torch

import core.model
from core import GenerationTree, sample_token, sampling_distribution, trace
from core.analysis import best_head, cosine_matrix, query_math, word_in_contexts, word_tokens
from core.registry import DEFAULT_MODEL, ENTRIES, entries, find, get, load_model
from core.trace import attention_record
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["tiny-stories-1m", "tiny-llama", "tiny-bert", "tiny-sinusoidal"]


def documented_names() -> set[str]:
    """The names in core.model's docstring table, with {i} for the block index."""
    return set(re.findall(r"^\| ([\w.{}]+)\s+\|", core.model.__doc__, flags=re.M)) - {"name"}


def recorded(preset: str) -> set[str]:
    model = tiny(preset, n_layers=2)
    ids = [1, 2, 3]
    return {re.sub(r"^blocks\.\d+\.", "blocks.{i}.", n) for n in trace(model, ids, record="*").names}


def test_docstring_table_equals_what_is_recorded():
    table = documented_names()
    union = set()
    for preset in FAMILIES:
        names = recorded(preset)
        assert names <= table, (preset, names - table)
        union |= names
    assert union == table, table - union  # no row documents a name that no family records


@pytest.mark.parametrize("preset", FAMILIES)
def test_every_recorded_name_is_a_module_path(preset):
    model = tiny(preset, n_layers=2)
    for name in trace(model, [1, 2, 3], record="*").names:
        prefix = name.rpartition(".")[0]
        model.get_submodule(prefix)  # raises AttributeError when the name does not match the module tree


def test_cached_trace_cannot_be_written_through_what_it_hands_out():
    model = tiny("tiny-stories-1m")
    tr = trace(model, [5, 6, 7, 8], record="*", lens_top_k=2)
    before = {name: tr[name] for name in tr.names}
    logits, probs, lens = tr.logits, tr.probs, tr.lens_ids
    handed = [tr[name] for name in tr.names] + [tr.pattern(0), tr.embed(), tr.resid_post(1), tr.resid_pre(0),
                                                  tr.z(0), *tr.qkv(0), tr.attn_scores(0), tr.hidden(),
                                                  tr.logits, tr.lens_ids, tr.lens_probs]
    for t in handed:
        t.fill_(True if t.dtype == torch.bool else 7)
    for name, value in before.items():
        assert torch.equal(tr[name], value), name
    assert torch.equal(tr.logits, logits) and torch.equal(tr.probs, probs) and torch.equal(tr.lens_ids, lens)
    assert not tr.hidden()[0, 0] and tr.hidden()[0, 1]


def test_long_trace_patterns_are_fresh_too():
    model = tiny("tiny-stories-1m", n_ctx=300)
    tr = trace(model, list(range(1, 290)))
    assert tr.compact_names
    first = tr.pattern(0)
    tr.pattern(0).zero_()
    assert torch.equal(tr.pattern(0), first)


def test_hidden_is_the_models_own_mask():
    decoder = trace(tiny("tiny-llama"), [1, 2, 3])
    assert torch.equal(decoder.hidden(), torch.ones(3, 3, dtype=torch.bool).triu(1))
    encoder = trace(tiny("tiny-bert"), [1, 2, 3])
    assert not encoder.hidden().any()


@pytest.mark.parametrize("preset", ["tiny-stories-1m", "tiny-llama", "tiny-bert"])
def test_query_math_recomputes_the_models_attention(preset):
    model = tiny(preset)
    tr = trace(model, list(range(3, 12)), record=attention_record(1))
    cfg = model.config
    for head in range(cfg.n_heads):
        math = query_math(tr, 1, head, 4)
        assert math.z_error < 1e-5 and math.score_error < 1e-5
        assert torch.allclose(math.weights, math.model_weights, atol=1e-6)
        assert bool(math.visible[5]) == (not cfg.causal)  # a later key: hidden only by a decoder
    assert [cfg.kv_head(h) for h in range(cfg.n_heads)] == [h // (cfg.n_heads // cfg.kv_heads) for h in range(cfg.n_heads)]


def test_best_head_and_cosine_matrix():
    scores = torch.tensor([[0.1, 0.2], [0.9, 0.3], [0.0, 0.5]])
    assert best_head(scores) == (1, 0, pytest.approx(0.9))
    sim = cosine_matrix(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
    assert torch.allclose(sim, torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_registry_is_the_one_list_of_models():
    assert list(ENTRIES)[0] == DEFAULT_MODEL and get(DEFAULT_MODEL).history is not None
    assert get("gpt2").history is None and get("gpt2").source == "hub"
    assert all(e.available for e in entries())
    encoder = find(encoder=True)
    assert encoder is None or (encoder.encoder and encoder.available)
    assert find(encoder=False).name == DEFAULT_MODEL
    with pytest.raises(ValueError, match="unknown model"):
        get("no-such-model")
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no-such-model")


def test_engine_imports_no_ui_and_has_no_cycles():
    for path in (ROOT / "core").glob("*.py"):
        imported = {n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(path.read_text()))
                    if isinstance(n, ast.Import)}
        imported |= {n.module.split(".")[0] for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"streamlit", "plotly", "pages", "tools"}, path.name


def test_pages_use_the_api_not_recorded_names_weights_or_masks():
    """No recorded name, weight, hand-made mask or kv-head map in pages/, and no model named by a constant: pages
    ask the registry entry or the config (the one "gpt2" allowed is the tokenizer of that name)."""
    names = "|".join(re.escape(n) for n in ENTRIES if n != "gpt2")
    pattern = re.compile(r"hook_|blocks\.|\.weight\b|\.triu\(|\.tril\(|causal=|n_heads // |"
                         r"(==|!=)\s*(registry\.)?DEFAULT_MODEL|model_name\s*(==|!=)|" + names)
    for path in sorted((ROOT / "pages").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not pattern.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()}"


def test_functions_stay_short():
    for folder in ("core", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    assert length <= 60, f"{path.relative_to(ROOT)}:{node.lineno} {node.name} has {length} lines"


def test_generation_tree_branches_and_is_bounded():
    tree = GenerationTree(max_nodes=4)
    a = tree.add(10)
    b = tree.add(11)
    assert tree.path() == [10, 11] and tree.path(a) == [10]
    tree.current = 0
    assert tree.add(10) == a  # the same token from the same node is the same branch
    c = tree.add(12)
    assert tree.children(a) == [b, c] and tree.leaves() == [b, c] and len(tree) == 4 and tree.full
    with pytest.raises(ValueError, match="maximum"):
        tree.add(13)
    tree.current = a
    assert tree.add(11) == b  # a full tree still walks its existing branches


def test_sample_token_is_shared_and_seeded():
    logits = torch.tensor([0.0, 1.0, 3.0])
    cols = sampling_distribution(logits, temperature=1.0)
    draws = [sample_token(cols, torch.Generator().manual_seed(s)) for s in range(50)]
    assert set(draws) <= {0, 1, 2} and draws == [sample_token(cols, torch.Generator().manual_seed(s)) for s in range(50)]
    assert sample_token(sampling_distribution(logits, temperature=0), torch.Generator(), greedy=True) == 2


def test_word_tokens_follow_the_whole_word():
    from core.tokenizer import load_tokenizer

    tok = load_tokenizer("gpt2")
    text = "I took my money to the riverbank and the bank"
    positions = word_tokens(tok, text, " bank")
    ids = tok.encode(text)
    assert "".join(tok.display(ids[i]) for i in positions).strip() == "bank"  # the whole word, not "riverbank"
    assert word_tokens(tok, text, "loan") == []


def test_a_decoder_cannot_see_later_words_an_encoder_can():
    """The same word with the same words before it: a decoder's vectors are identical at every layer, whatever
    follows; an encoder's differ."""
    from core.tokenizer import load_tokenizer

    tok = load_tokenizer("gpt2")
    a, b = "The bank was muddy after the flood.", "The bank was closed on Sunday."
    for preset, identical in (("tiny-stories-1m", True), ("tiny-bert", False)):
        model = tiny(preset, vocab_size=50257)
        model.tokenizer = tok
        found = word_in_contexts(tok, trace(model, a, record="*"), a, trace(model, b, record="*"), b, "bank")
        assert found.same_prefix
        assert bool((found.cosine > 1 - 1e-6).all()) == identical, (preset, found.cosine)


def test_word_order_experiment_without_positions():
    """Removing the position signal makes an encoder a bag of words (each token's vector the same in both orders)
    but not a decoder: its mask still carries order. A decoder's last token and an encoder's special tokens stay."""
    from core.analysis import word_order_experiment

    ids = [5, 17, 9, 33, 21, 8, 40, 2]
    for preset in ("tiny-bert", "tiny-sinusoidal", "tiny-llama"):
        model = tiny(preset)
        exp = word_order_experiment(model, ids, seed=1)
        assert sorted(exp.shuffled) == sorted(ids) and exp.shuffled != ids
        assert [exp.original[i] for i in exp.moved_from] == exp.shuffled
        if model.config.causal:
            assert exp.shuffled[-1] == ids[-1]
            assert float(exp.same_token_cosine[False].min()) < 0.999
            assert set(exp.probs) == {("original", True), ("original", False), ("shuffled", True), ("shuffled", False)}
        else:
            assert float(exp.same_token_cosine[False].min()) > 0.9999 and exp.probs is None
        assert float(exp.same_token_cosine[True].min()) < 0.999  # with positions, order changes the vectors


def test_generation_tree_layout_and_path():
    tree = GenerationTree()
    a = tree.add(10, 0.5)
    tree.add(11, 0.25)
    tree.current = a
    c = tree.add(12, 0.125)
    places = tree.layout()
    assert places[0] == (0, 0) and places[a] == (1, 0)
    assert sorted(p[1] for p in places if p[0] == 2) == [0, 1]  # two branch ends, one row each
    assert tree.on_path() == {0, a, c} and tree.probs == [None, 0.5, 0.25, 0.125]


def test_rope_pair_turns_back_to_the_projections_output():
    """Issue 14.7: the page's "before RoPE" points are the model's own q and k as projected, before the rotation."""
    from core.analysis import rope_pair

    model = tiny("tiny-llama")
    tr = trace(model, list(range(1, 12)), record=attention_record(0) + ("blocks.0.ln1.hook_normalized",))
    cfg = model.config
    qkv = model.blocks[0].attn.qkv(tr["blocks.0.ln1.hook_normalized"])
    q = qkv[:, : cfg.n_heads * cfg.head_dim].view(11, cfg.n_heads, cfg.head_dim)
    k = qkv[:, cfg.n_heads * cfg.head_dim: (cfg.n_heads + cfg.kv_heads) * cfg.head_dim].view(11, cfg.kv_heads, -1)
    half = cfg.head_dim // 2
    for head, pair in ((0, 0), (3, half - 1)):
        turn = rope_pair(tr, 0, head, pair)
        assert torch.allclose(turn.q_before, q[:, head][:, [pair, pair + half]], atol=1e-5)
        assert torch.allclose(turn.k_before, k[:, cfg.kv_head(head)][:, [pair, pair + half]], atol=1e-5)
        assert torch.allclose(turn.q_after.norm(dim=-1), turn.q_before.norm(dim=-1), atol=1e-5)  # a rotation


def test_odd_positions_finds_a_row_unlike_its_neighbours():
    from core.analysis import odd_positions

    angles = torch.arange(40, dtype=torch.float32)[:, None] * torch.tensor([[0.1, 0.2]])
    table = torch.cat([angles.cos(), angles.sin()], dim=1)  # smooth: neighbours alike
    table[17] = -table[17]  # one slot trained for something else
    odd, median = odd_positions(table, k=1)
    assert odd[0][0] == 17 and odd[0][1] < 0 < median
