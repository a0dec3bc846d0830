"""core.generate's timing helpers: repeated, warmed measurements reported as a median and a range, and the
comparison the Generation page draws from them. Nothing here asserts how fast anything is."""

import pytest

from core.generate import Spread, greedy, time_cache
from tests.conftest import tiny


def test_a_spread_is_its_median_and_range_and_overlap_is_symmetric():
    a, b, c = Spread((3.0, 1.0, 2.0)), Spread((2.5, 4.0)), Spread((5.0, 6.0, 7.0))
    assert (a.median, a.low, a.high) == (2.0, 1.0, 3.0)
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c) and not c.overlaps(a)


def test_time_cache_repeats_both_ways_and_pairs_the_speedups():
    model = tiny("tiny-stories-1m", dropout=0.0)
    timing = time_cache(model, [5, 9, 3, 7, 1, 2], 4, repeats=3)
    assert len(timing.cached.values) == len(timing.uncached.values) == len(timing.speedup.values) == 3
    assert timing.speedup.values == pytest.approx([u / c for u, c in zip(timing.uncached.values,
                                                                          timing.cached.values)])
    assert timing.same_tokens and (timing.n_prompt, timing.n_new) == (6, 4)
    assert timing.within_noise == timing.cached.overlaps(timing.uncached)
    assert greedy(model, [5, 9, 3, 7, 1, 2], 4).new_ids == greedy(model, [5, 9, 3, 7, 1, 2], 4, False).new_ids
    with pytest.raises(ValueError):
        time_cache(model, [5, 9], 2, repeats=0)
