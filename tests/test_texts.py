"""pages/common/texts: explanation texts are true for the model and the numbers they are given — articles and
plurals included — and the claims they make follow from those numbers."""

import dataclasses

import pytest

from core.config import PRESETS
from core.generate import CacheTiming, Spread
from pages.common import texts


def test_the_norm_takes_its_article():
    llama, bert = PRESETS["tiny-llama"], PRESETS["tiny-bert"]
    assert "an RMSNorm feeds" in texts.block(llama) and "a RMSNorm" not in texts.block(llama)
    assert "a LayerNorm" in texts.block(dataclasses.replace(llama, norm="layernorm"))
    for cfg in (llama, bert):
        for name in ("tokens", "embed", "block", "final_norm", "unembed", "softmax"):
            assert "a RMSNorm" not in texts.stage(cfg, name)


def test_byte_tokens_are_named_for_what_they_are():
    from core.loading import registry

    tok = registry.load_model("tiny-stories-1m").tokenizer
    bell, lone, word = tok.id_of(b"\x07"), tok.id_of(b"\xbc"), tok.encode(" girl")[0]
    said = texts.byte_tokens(tok, [bell, lone, word], lambda i: tok.display(i))
    assert "is a control character" in said and "is a single byte of the 2–4" in said
    assert tok.display(word) not in said
    assert texts.byte_tokens(tok, [word], str) == ""


def timing(n_prompt: int, speedups: tuple[float, ...]) -> CacheTiming:
    cached = Spread(tuple(0.01 for _ in speedups))
    return CacheTiming(n_prompt, cached, Spread(tuple(0.01 * s for s in speedups)), Spread(speedups), True)


@pytest.mark.parametrize("short, long, claim", [
    ((1.0, 1.1, 1.2), (2.0, 2.2, 2.5), "the saving grew with the length"),
    ((1.0, 1.1, 2.2), (2.0, 2.2, 2.5), "cannot tell the two savings apart"),
    ((3.0, 3.1, 3.2), (2.0, 2.2, 2.5), "larger for the shorter text"),
])
def test_the_kv_caption_claims_only_what_the_speedups_show(short, long, claim):
    said = texts.kv_saving(timing(4, short), timing(255, long))
    assert claim in said
    assert ("grew" in said) == (claim == "the saving grew with the length")


def test_faster_says_within_noise_when_the_ranges_overlap():
    overlapping = CacheTiming(4, Spread((1.0, 2.0)), Spread((1.5, 3.0)), Spread((1.5, 1.5)), True)
    apart = CacheTiming(4, Spread((1.0, 1.2)), Spread((1.5, 3.0)), Spread((1.5, 2.5)), True)
    assert texts.faster(overlapping) == "within noise" and texts.faster(apart) == "the cache"


def test_a_failing_few_shot_curve_never_reads_below_zero():
    """A probability too small for 2 decimals is written with 2 significant digits: 'stays below 0.000' was shown."""
    from core.prompting import Effect
    said = texts.shots_effect("tiny-stories-1m", Effect("fails", 1e-5, 2e-5, 3, 8e-6, 2.4e-5), 5)
    assert "at or below 2.4e-05" in said and "0.00 " not in said and "0.000" not in said
    assert texts.probability(0.25) == "0.25" and texts.probability(0.0) == "0.00"


def test_the_tokenizer_text_counts_the_bytes_without_a_token_and_names_the_impossible_ones():
    """It said the missing bytes 'never appeared on their own in its training text' and that they 'learned' the
    merges; 0xC0, 0xC1 and 0xF5-0xFF cannot occur in UTF-8 at all, the rest are only counted."""
    cfg = PRESETS["tiny-stories-1m"]
    said = texts.tokenizer(cfg, "x", "bpe", missing_bytes=[0x04, 0xC0, 0xC1, 0xF5, 0xFF])
    assert "251 of the 256 possible ones have a token of their own, 5 do not (4 of those, such as C0, C1, F5, " \
           "never occur in UTF-8 text). From its training text it learned" in said
    assert "never appeared" not in said
    assert "starts from the 256 possible bytes." in texts.tokenizer(cfg, "x", "bpe")
    from core import load_model
    from core.tokenizer import bytes_without_token
    assert bytes_without_token(load_model("tiny-stories-1m", device="cpu").tokenizer) == []
