"""pages/common/pins.py: an open page with fragments pins no trace of its own — the traces it left in its globals
become handles that fetch from the store again, and a fragment's rerun still draws."""

from streamlit.testing.v1 import AppTest

from core import budget
from core.config import PRESETS
from core.model import _cached_mask, attention_mask
from core.trace import Trace
from pages.common import pins
from tests.test_app import APP


def test_traces_a_page_leaves_to_its_fragments_become_handles():
    class TraceLike:
        tokens = ["a", "b"]

    fetched, kept, other = [], TraceLike(), TraceLike()
    namespace = {"tr": kept, "other": other, "n": 3}
    pins.handed_out(kept, lambda: fetched.append(1) or kept)
    pins.keep_page_globals(namespace)
    pins.unpin_traces()
    assert isinstance(namespace["tr"], pins.PageTrace) and fetched == []
    assert namespace["other"] is other and namespace["n"] == 3  # only what Context.trace handed out
    assert namespace["tr"].tokens == ["a", "b"] and fetched == [1]  # fetched again when used


def test_the_attention_page_keeps_no_trace_in_its_globals_and_its_fragment_reruns():
    import gc

    budget.store.clear()
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, Trace)}  # other tests' sessions may still hold some
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page("pages/attention.py")
    at.run()
    assert not at.exception
    budget.store.clear()  # the store lets every trace go: the open page must not hold one
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Trace) and id(o) not in before]
    at.slider(key="layer").set_value(1).run()  # the one-head fragment reruns through its handle
    assert not at.exception


def test_big_masks_are_not_cached():
    cfg = PRESETS["tiny-stories-1m"]
    _cached_mask.cache_clear()
    attention_mask(cfg, 0, 64)
    attention_mask(cfg, 0, 2048)  # 4 M cells
    assert _cached_mask.cache_info().currsize == 1
