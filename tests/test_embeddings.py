"""Embeddings and words in context (core.interpret): cosine similarity, the tokens of one whole word, and the same
word in two sentences layer by layer — a decoder cannot see the words after it, an encoder can."""

import torch

from core import trace
from core.interpret.embeddings import cosine_matrix, word_in_contexts, word_tokens
from core.tokenizer import load_tokenizer
from tests.conftest import tiny


def test_cosine_matrix_of_parallel_and_orthogonal_rows():
    sim = cosine_matrix(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
    assert torch.allclose(sim, torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))


def test_word_tokens_follow_the_whole_word():
    tok = load_tokenizer("gpt2")
    text = "I took my money to the riverbank and the bank"
    positions = word_tokens(tok, text, " bank")
    ids = tok.encode(text)
    assert "".join(tok.display(ids[i]) for i in positions).strip() == "bank"  # the whole word, not "riverbank"
    assert word_tokens(tok, text, "loan") == []


def test_a_decoder_cannot_see_later_words_an_encoder_can():
    """The same word with the same words before it: a decoder's vectors are identical at every layer, whatever
    follows; an encoder's differ."""
    tok = load_tokenizer("gpt2")
    a, b = "The bank was muddy after the flood.", "The bank was closed on Sunday."
    for preset, identical in (("tiny-stories-1m", True), ("tiny-bert", False)):
        model = tiny(preset, vocab_size=50257)
        model.tokenizer = tok
        found = word_in_contexts(tok, trace(model, a, record="*"), a, trace(model, b, record="*"), b, "bank")
        assert found.same_prefix
        assert bool((found.cosine > 1 - 1e-6).all()) == identical, (preset, found.cosine)
