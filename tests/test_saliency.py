"""Input saliency: integrated gradients are complete (their sum is the target logit's change from the baseline,
within 1%) on tiny seeded models of each decoder family, and gradient × input is the plain gradient's product."""

import pytest
import torch

from core import trace
from core.interpret.saliency import saliency
from tests.conftest import tiny

TEXT_IDS = [5, 17, 301, 44, 9, 17, 301, 2, 60, 7]


@pytest.mark.parametrize("name", ["tiny-stories-1m", "tiny-llama", "tiny-sinusoidal"])
def test_integrated_gradients_sum_to_the_logit_difference(name):
    model = tiny(name, dropout=0.0)
    target = int(trace(model, TEXT_IDS).logits.argmax())
    found = saliency(model, TEXT_IDS, target)
    assert found.logit == pytest.approx(float(trace(model, TEXT_IDS, record=()).logits[target]), abs=1e-4)
    assert found.completeness_error < 0.01
    assert found.integrated.shape == found.grad_x_input.shape == (len(TEXT_IDS),)


def test_gradient_times_input_is_the_embeddings_gradient():
    model = tiny("tiny-stories-1m", dropout=0.0)
    found = saliency(model, TEXT_IDS, 3, steps=1)
    embedded = model.embed(torch.tensor([TEXT_IDS])).requires_grad_(True)  # (1, T, d)
    positions = model.pos_embed(torch.arange(len(TEXT_IDS)))
    x = embedded + positions
    for block in model.blocks:
        x, _ = block(x, None, None, None)
    logit = model.unembed_logits(model.ln_final(x[:, -1]))[0, 3]
    (grad,) = torch.autograd.grad(logit, embedded)
    assert torch.allclose(found.grad_x_input, (embedded * grad).sum(-1)[0].detach(), atol=1e-5)


def test_saliency_refuses_an_encoder():
    with pytest.raises(ValueError, match="encoder"):
        saliency(tiny("tiny-bert"), TEXT_IDS, 3)


def test_the_path_logits_are_the_models_own_and_the_jump_is_their_largest_step():
    model = tiny("tiny-llama", dropout=0.0)
    found = saliency(model, TEXT_IDS, 3, steps=4)
    assert found.path_logits.shape == (4,)
    embedded = model.embed(torch.tensor([TEXT_IDS])).float()
    baseline = model.embed.weight.float().mean(0)
    from core.model import Edit, Recorder
    for i, alpha in enumerate([0.125, 0.375, 0.625, 0.875]):  # the midpoints of 4 steps
        rec = Recorder((), edits=[Edit("hook_embed", "set", value=baseline + alpha * (embedded - baseline))])
        logits, _ = model(torch.tensor([TEXT_IDS]), rec=rec, kv_cache=False)
        assert float(logits[0, 3]) == pytest.approx(float(found.path_logits[i]), abs=1e-4)
    points = [found.baseline_logit, *found.path_logits.tolist(), found.logit]
    assert found.largest_jump == pytest.approx(max(abs(b - a) for a, b in zip(points, points[1:])), abs=1e-5)

