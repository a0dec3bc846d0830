"""pages/common/cache.py: one trace per text, grown for each view; everything kept within the memory budget."""

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import budget
from core.model import Transformer
from pages.common.nav import PAGES as SPECS
from pages.common.sidebar import DEFAULT_TEXT
from tests.test_app import APP

# Pages whose point is running the model again on other inputs (generating, training, few-shot prompts, the
# translator): left out of the count, as the trace does not serve them.
RERUNS = {"pages/generation.py", "pages/fine_tuning.py", "pages/training.py", "pages/prompting.py",
          "pages/translation.py"}


@pytest.mark.parametrize("name", ["tiny-stories-1m", pytest.param("smollm2-135m", marks=pytest.mark.slow)])
def test_every_page_with_one_text_runs_one_forward_pass_of_it(name, monkeypatch):
    budget.store.clear()
    original, seen = Transformer.forward, []
    visited, generated = [], []

    def counting(self, idx, *args, kv_cache=True, **kwargs):
        page = visited[-1] if visited else "start"
        edited = not kwargs.get("positions", True) or getattr(kwargs.get("rec"), "edits", None)
        if kv_cache:  # generation keeps its keys and values: counted apart, below
            generated.append(page)
        elif not edited:  # a plain pass (an experiment edits its run: positions removed, parts switched off)
            seen.append((page, idx[0].tolist()))
        return original(self, idx, *args, kv_cache=kv_cache, **kwargs)

    monkeypatch.setattr(Transformer, "forward", counting)
    from core.loading import registry

    if not registry.get(name).available:
        pytest.skip(f"{name} is not installed")
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params["model"] = name
    at.run()
    ids = registry.load_model(name).tokenizer.encode(DEFAULT_TEXT)
    for spec in SPECS:
        if spec.path in RERUNS:
            continue
        visited.append(spec.path)
        at.switch_page(spec.path)
        at.run()
        assert not at.exception, (spec.path, [e.value for e in at.exception])
    full = [page for page, s in seen if s == ids]
    assert len(visited) >= 10 and len(full) == 1, f"forward passes of the text on {full}"
    # continuations of the text (the lesson's, the next-token page's, steering's) are generations, not views
    assert set(generated) <= {"pages/lesson.py", "pages/quiz.py", "pages/next_token.py", "pages/steering.py"}, generated


def test_a_short_texts_one_forward_pass_records_every_blocks_adds(monkeypatch):
    """The Forward pass page, its picture and the attribution read every block's adds: a short text's one forward
    pass records them (no block runs again), a longer one's are grown from the stream — the same numbers either
    way."""
    from core.interpret.attribution import ATTRIBUTION_RECORD
    from core.interpret.lens import SUMMARY_RECORD, forward_summary
    from pages.common import cache

    name, text = "tiny-stories-1m", "Lily and Tom went to the park to play with a red ball."
    budget.store.clear()
    shared = cache.traced(name, "cpu", text)
    assert not shared.lacks(SUMMARY_RECORD) and not shared.lacks(ATTRIBUTION_RECORD)
    assert cache.grown(name, "cpu", text, SUMMARY_RECORD) is shared, "nothing grown, nothing kept twice"
    monkeypatch.setattr(cache, "SMALL_ADDS", 0)  # as if the text were long
    budget.store.clear()
    stream_only = cache.traced(name, "cpu", text)
    assert stream_only.lacks(SUMMARY_RECORD)
    grown = cache.grown(name, "cpu", text, SUMMARY_RECORD)
    assert grown is not stream_only and not grown.lacks(SUMMARY_RECORD)
    model = cache.model(name, "cpu")
    recorded, regrown = forward_summary(model, shared, lens_k=0), forward_summary(model, grown, lens_k=0)
    assert torch.allclose(recorded.resid_norm, regrown.resid_norm, atol=1e-5)
    assert torch.allclose(recorded.added_norm.nan_to_num(), regrown.added_norm.nan_to_num(), atol=1e-5)
    budget.store.clear()
