"""The BPE trainer (core/bpe.py): its merges load in tiktoken and round-trip any text, each merge's count is the
bytes it saves, and a paragraph trains in under 2 seconds."""

import time

import tiktoken

from core.bpe import train_bpe
from core.tokenizer import from_rank_file, write_ranks

TEXT = (
    "Once upon a time, there was a little girl named Lily. She loved to play in the park with her friend Tom. "
    "One day, Lily and Tom went to the park. They saw a big red ball. \"Can we play with the ball?\" asked Lily. "
    "Tom said yes, and they played all day. The sun was warm and the birds sang. 🌞 Ünïcödé too. "
) * 3


def test_bpe_round_trips_and_loads_in_tiktoken(tmp_path):
    result = train_bpe(TEXT, 120)
    assert len(result.merges) == 120
    assert [result.ranks[m.token] for m in result.merges] == list(range(256, 376))
    path = tmp_path / "mini.tiktoken"
    write_ranks(result.ranks, path)
    tok = from_rank_file(path)  # a model's own BPE goes through the same machinery as gpt2
    enc = tiktoken.Encoding("mini", pat_str=tok.pattern, mergeable_ranks=result.ranks, special_tokens={})
    for s in (TEXT, "Lily and Tom", "a brand new wörd 🦙", ""):
        assert tok.decode(tok.encode(s)) == s
        assert tok.encode(s) == enc.encode_ordinary(s)
    assert len(tok.encode(TEXT)) < len(TEXT.encode()) / 2  # merges really compress the text they came from
    assert tok.eot_id == 376


def test_bpe_counts_explain_the_shrinking_text():
    result = train_bpe(TEXT, 60)
    tok = result.tokenizer()
    assert len(tok.encode(TEXT)) == len(TEXT.encode()) - sum(m.count for m in result.merges)


def test_bpe_is_fast_on_a_paragraph():
    start = time.perf_counter()
    train_bpe(TEXT * 4, 400)
    assert time.perf_counter() - start < 2.0
