"""Heads and attention math (core.interpret): one query's q·k, softmax and weighted sum recomputed from the recorded
q, k, v equal the model's own attention, and the strongest head of a score table is found."""

import pytest
import torch

from core import trace
from core.interpret.attention_math import query_math
from core.interpret.heads import best_head
from core.trace import attention_record
from tests.conftest import tiny


@pytest.mark.parametrize("preset", ["tiny-stories-1m", "tiny-llama", "tiny-bert"])
def test_query_math_recomputes_the_models_attention(preset):
    model = tiny(preset)
    tr = trace(model, list(range(3, 12)), record=attention_record(1))
    cfg = model.config
    for head in range(cfg.n_heads):
        math = query_math(tr, 1, head, 4)
        assert math.z_error < 1e-5 and math.score_error < 1e-5
        assert torch.allclose(math.weights, math.model_weights, atol=1e-6)
        assert bool(math.visible[5]) == (not cfg.causal)  # a later key: hidden only by a decoder
    assert [cfg.kv_head(h) for h in range(cfg.n_heads)] == [h // (cfg.n_heads // cfg.kv_heads) for h in range(cfg.n_heads)]


def test_best_head_is_the_highest_score():
    scores = torch.tensor([[0.1, 0.2], [0.9, 0.3], [0.0, 0.5]])
    assert best_head(scores) == (1, 0, pytest.approx(0.9))
