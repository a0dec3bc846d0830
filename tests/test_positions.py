"""Positions (the Positional encoding page's numbers from core.interpret): the word-order experiment with and
without the position signal, RoPE's rotation of the model's own q and k, and a learned table's odd rows."""

import torch

from core import trace
from core.interpret.positions import odd_positions, rope_pair, word_order_experiment
from core.trace import attention_record
from tests.conftest import tiny


def test_word_order_experiment_without_positions():
    """Removing the position signal makes an encoder a bag of words (each token's vector the same in both orders)
    but not a decoder: its mask still carries order. A decoder's last token and an encoder's special tokens stay."""
    ids = [5, 17, 9, 33, 21, 8, 40, 2]
    for preset in ("tiny-bert", "tiny-sinusoidal", "tiny-llama"):
        model = tiny(preset)
        exp = word_order_experiment(model, trace(model, ids), seed=1)
        assert sorted(exp.shuffled) == sorted(ids) and exp.shuffled != ids
        assert [exp.original[i] for i in exp.moved_from] == exp.shuffled
        if model.config.causal:
            assert exp.shuffled[-1] == ids[-1]
            assert float(exp.same_token_cosine[False].min()) < 0.999
            assert set(exp.probs) == {("original", True), ("original", False), ("shuffled", True), ("shuffled", False)}
        else:
            assert float(exp.same_token_cosine[False].min()) > 0.9999 and exp.probs is None
        assert float(exp.same_token_cosine[True].min()) < 0.999  # with positions, order changes the vectors


def test_rope_pair_turns_back_to_the_projections_output():
    """The page's "before RoPE" points are the model's own q and k as projected, before the rotation."""
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
    angles = torch.arange(40, dtype=torch.float32)[:, None] * torch.tensor([[0.1, 0.2]])
    table = torch.cat([angles.cos(), angles.sin()], dim=1)  # smooth: neighbours alike
    table[17] = -table[17]  # one slot trained for something else
    odd, median = odd_positions(table, k=1)
    assert odd[0][0] == 17 and odd[0][1] < 0 < median
