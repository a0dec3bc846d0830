"""Hostile input, concurrency and offline use: nothing breaks, nothing leaks, nothing is injected."""

import threading

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import generate, load_model, trace
from core.loading.registry import DEFAULT_MODEL, MODELS_DIR
from pages.common.html import bertviz_offline, script_safe, token_spans

pytestmark = pytest.mark.skipif(not (MODELS_DIR / DEFAULT_MODEL / "config.json").exists(),
                                reason="the embedded model is not in assets/")

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img src=x onerror=alert(1)>", "</script>", "<!--",
           "\x00", "\u200b", "\u200d", "\ufeff", "\ufffd", "\u202e", "👨‍👩‍👧‍👦", "👍🏽", "e\u0301", "مرحبا", "日本語"]
hostile = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(SPECIAL), max_size=30).map("".join),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Mn", "So", "Zs"]), max_size=100),
    st.sampled_from(["", " ", "\n\n", "\t", "x" * 50_000, "a " * 3000]),
)


@pytest.fixture(scope="module")
def model():
    return load_model(device="cpu")


@pytest.mark.slow  # 2,000 generated texts through the embedded model
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=hostile)
def test_tokenize_trace_sample_never_break(model, text):
    tok = model.tokenizer
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert b"".join(tok.token_bytes(i) for i in ids) == text.encode("utf-8")
    if not ids:
        with pytest.raises(ValueError, match="no tokens"):
            trace(model, text)
        return
    tr = trace(model, text, record=("blocks.0.attn.hook_pattern",))
    assert tr.n_tokens == min(len(ids), model.config.n_ctx)
    assert tr.n_truncated == max(0, len(ids) - model.config.n_ctx)
    assert torch.isfinite(tr.logits).all() and torch.isfinite(tr.pattern(0)).all()
    gen = generate(model, ids[-32:], max_new_tokens=2, temperature=1.0, top_k=20, top_p=0.9, seed=1)
    assert all(torch.isfinite(s.probs).all() for s in gen.steps)
    html = token_spans(tr.tokens, tr.token_ids)
    assert "<img" not in html and "<script" not in html.lower() and "<!--" not in html


def test_script_safe_escapes_what_closes_a_script():
    assert "</" not in script_safe('["</script>", "<!-- x"]') and "<!--" not in script_safe("<!--")


def test_bertviz_html_cannot_be_broken_out_of(model):
    import bertviz

    tokens = ["</script><script>alert(1)</script>", "<!--", "ok"]
    attention = [torch.full((1, 4, 3, 3), 1 / 3)]
    page = bertviz_offline(bertviz.head_view(attention, tokens, html_action="return").data)
    body = page.split("<script>")[-1]
    assert "</script><script>alert" not in page and "<!--" not in body.rsplit("</script>", 1)[0]
    assert "cdnjs" not in page.split("require.config")[-1].split("requirejs(")[0].replace("d3.min", "")


def test_32_threads_match_sequential(model):
    texts = [f"Story {i}: Lily saw {'a big ' * (i % 5)}dog number {i} in the park." for i in range(32)]
    sequential = [trace(model, t) for t in texts]
    results: list = [None] * 32
    barrier = threading.Barrier(32)

    def work(i):
        barrier.wait()
        results[i] = trace(model, texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seq, par in zip(sequential, results):
        assert seq.token_ids == par.token_ids and torch.equal(seq.logits, par.logits)
        assert all(torch.equal(seq[n], par[n]) for n in seq.names)
