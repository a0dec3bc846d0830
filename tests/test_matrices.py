"""core.interpret.matrices: the weight matrices drawn are the model's own, in x @ W orientation, pooled by block means."""

import pytest
import torch

from core.interpret.matrices import matrix_names, pooled, weight_matrix
from tests.conftest import tiny


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-bert"])
def test_each_matrix_is_the_models_own_in_x_at_w_orientation(name):
    model = tiny(name)
    cfg, block = model.config, model.blocks[1]
    x = torch.randn(cfg.d_model)
    q = weight_matrix(model, 1, "W_Q")
    assert q.shape == (cfg.d_model, cfg.n_heads * cfg.head_dim) and q.col_group == cfg.head_dim
    if q.row_step == q.col_step == 1:  # nothing pooled: x @ W is the model's query projection (no bias)
        expected = block.attn.qkv(x)[: cfg.n_heads * cfg.head_dim] - (block.attn.qkv.bias[: q.shape[1]]
                                                                       if block.attn.qkv.bias is not None else 0)
        torch.testing.assert_close(x @ q.values, expected, rtol=1e-4, atol=1e-5)
    out = weight_matrix(model, 1, "W_out")
    assert out.shape == (cfg.mlp_dim, cfg.d_model) and tuple(out.values.shape) == (min(cfg.mlp_dim, 192), cfg.d_model)
    assert ("W_gate" in matrix_names(model)) == (cfg.mlp == "swiglu")


def test_pooling_keeps_block_means_and_the_embedding_window_holds_the_token():
    w = torch.arange(400 * 10, dtype=torch.float32).reshape(400, 10)
    values, row_step, col_step = pooled(w, cells=200)
    assert values.shape == (200, 10) and row_step == 2 and col_step == 1
    assert torch.equal(values[3], w[6:8].mean(0))
    model = tiny("tiny-stories-1m")
    emb = weight_matrix(model, 0, "embedding", token_id=1000)
    assert emb.first_row <= 1000 < emb.first_row + emb.values.shape[0] and emb.marked_row == 1000
    torch.testing.assert_close(emb.values[1000 - emb.first_row], model.embed.weight[1000])
    with pytest.raises(ValueError, match="not in this model"):
        weight_matrix(model, 99, "W_Q")
