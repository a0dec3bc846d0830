"""Surprisal per token: −log p of each token given the ones before it, the same numbers as the cross-entropy of the
trace's own logits, on tiny seeded decoders; an encoder is refused with the reason."""

import math

import pytest
import torch
import torch.nn.functional as F

from core import trace
from core.interpret.surprisal import surprisal
from tests.conftest import tiny

TEXT_IDS = [5, 17, 301, 44, 9, 17, 301, 2, 60, 7]


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal"])
def test_surprisal_is_the_cross_entropy_of_the_traces_logits(name):
    tr = trace(tiny(name, dropout=0.0), TEXT_IDS, logits="all")
    found = surprisal(tr)
    per_token = F.cross_entropy(tr.all_logits[:-1], torch.tensor(TEXT_IDS[1:]), reduction="none")
    assert math.isnan(found.nll[0]) and torch.allclose(found.nll[1:], per_token, atol=1e-5)
    assert found.mean_loss == pytest.approx(float(per_token.mean()), abs=1e-5)
    assert found.perplexity == pytest.approx(math.exp(float(per_token.mean())), rel=1e-5)
    probs = tr.all_logits.softmax(-1)
    for t in range(1, len(TEXT_IDS)):
        assert found.top_ids[t].tolist() == probs[t - 1].topk(5).indices.tolist()
        assert int(found.rank[t]) == int((probs[t - 1] > probs[t - 1, TEXT_IDS[t]]).sum()) + 1
    assert found.most_surprising(3) == (per_token.argsort(descending=True)[:3] + 1).tolist()


def test_surprisal_refuses_an_encoder_and_a_trace_without_every_logit():
    with pytest.raises(ValueError, match="encoder"):
        surprisal(trace(tiny("tiny-bert"), TEXT_IDS))
    with pytest.raises(ValueError, match='logits="all"'):
        surprisal(trace(tiny("tiny-llama"), TEXT_IDS))


def test_one_token_has_no_loss():
    found = surprisal(trace(tiny("tiny-llama"), [5], logits="all"))
    assert len(found.nll) == 1 and math.isnan(found.mean_loss)
