"""core.generate: the one temperature/top-k/top-p distribution and seeded draws, the tree of branches the Next token
page lets a learner walk, and the timing helpers (repeated, warmed measurements reported as a median and a range, and
the comparison the Generation page draws from them; nothing here asserts how fast anything is)."""

import pytest
import torch

from core import GenerationTree, sample_token, sampling_distribution
from core.generate import Generation, Spread, decoded, shown, time_step, unfinished_tail
from tests.conftest import tiny


def test_a_spread_is_its_median_and_range_and_overlap_is_symmetric():
    a, b, c = Spread((3.0, 1.0, 2.0)), Spread((2.5, 4.0)), Spread((5.0, 6.0, 7.0))
    assert (a.median, a.low, a.high) == (2.0, 1.0, 3.0)
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c) and not c.overlaps(a)


def test_time_step_repeats_both_ways_and_pairs_the_speedups():
    model = tiny("tiny-stories-1m", dropout=0.0)
    timing = time_step(model, [5, 9, 3, 7, 1, 2], repeats=3)
    assert len(timing.cached.values) == len(timing.uncached.values) == len(timing.speedup.values) == 3
    assert timing.speedup.values == pytest.approx([u / c for u, c in zip(timing.uncached.values,
                                                                          timing.cached.values)])
    assert timing.same_tokens and timing.n_prompt == 6
    assert timing.within_noise == timing.cached.overlaps(timing.uncached)
    with pytest.raises(ValueError):
        time_step(model, [5, 9], repeats=0)


def test_sample_token_is_shared_and_seeded():
    logits = torch.tensor([0.0, 1.0, 3.0])
    cols = sampling_distribution(logits, temperature=1.0)
    draws = [sample_token(cols, torch.Generator().manual_seed(s)) for s in range(50)]
    assert set(draws) <= {0, 1, 2} and draws == [sample_token(cols, torch.Generator().manual_seed(s)) for s in range(50)]
    assert sample_token(sampling_distribution(logits, temperature=0), torch.Generator(), greedy=True) == 2


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


def test_the_temperature_sweep_is_each_temperatures_own_distribution():
    from core.generate import entropy, sampling_distribution, temperature_sweep

    logits = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 4
    temps = [0.05, 0.3, 1.0, 2.0]
    entropies, tops = temperature_sweep(logits, temps)
    for t, h, top in zip(temps, entropies, tops):
        probs = sampling_distribution(logits, t).probs
        assert abs(h - entropy(probs)) < 1e-4 and abs(top - float(probs.max())) < 1e-6
    with pytest.raises(ValueError, match="above 0"):
        temperature_sweep(logits, [0.0])


@pytest.mark.parametrize("data, tail", [(b"abc", 0), (b"", 0), ("é".encode()[:1], 1), ("😀".encode()[:2], 2),
                                        ("😀".encode()[:3], 3), ("a😀".encode(), 0), ("a中".encode()[:-1], 2),
                                        (b"\x80", 0)])
def test_unfinished_tail_counts_the_first_bytes_of_a_character_cut_short(data, tail):
    assert unfinished_tail(data) == tail


def test_a_character_split_over_tokens_is_named_not_shown_as_a_replacement_mark():
    """The embedded model's byte-level tokenizer spells an emoji as 4 one-byte tokens: a generation that stops after
    the first 2 has whole characters as its text and names the 2 bytes it ended in."""
    from core import load_model
    tok = load_model("tiny-stories-1m", device="cpu").tokenizer
    ids = tok.encode("a 😀 b")
    cut = next(i for i in range(len(ids)) if tok.token_bytes(ids[i]) == "😀".encode()[:1]) + 2
    assert tok.decode(ids[:cut]).endswith("\ufffd")  # what a plain decode shows
    text, unfinished = decoded(tok, ids[:cut])
    assert (text, unfinished) == ("a ", "😀".encode()[:2])
    assert decoded(tok, ids) == ("a 😀 b", b"")
    g = Generation([], ids[:cut], [], text, "max_new_tokens", unfinished)
    assert g.shown() == "a  ⟨2 bytes of an unfinished character: F0 9F⟩" and "\ufffd" not in g.shown()
    assert shown("done", b"") == "done"
