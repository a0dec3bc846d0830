"""AppTest for the causal experiment pages (activation patching, steering, surprise over the whole text): what the
learner sees, checked against the core's own numbers on tiny-stories-1m, and what an encoder says instead."""

import math

import pytest
import torch

from core import patch_sweep, steering_vector, trace
from core.interpret.surprisal import surprisal
from core.interventions import default_pair, steer_defaults
from core.loading.registry import load_model
from pages.common.html import visible
from tests.test_app import app, charts, matrix, open_page, title
from tests.test_app_inside import PACKAGED

TEXT = "Lily and Tom went to the park to play."


def test_patching_page_draws_the_grid_and_says_where_the_information_sits():
    at = open_page(app(), "pages/patching.py")
    model = load_model("tiny-stories-1m")
    clean, corrupt = default_pair("tiny-stories-1m", "patch")
    target = int(trace(model, clean).probs.argmax())
    grid = next(c for c in charts(at) if "after patching one vector" in title(c))
    expected = patch_sweep(model, clean, corrupt, target).numpy()
    assert matrix(grid["data"][0]["z"]) == pytest.approx(expected, abs=1e-5)
    assert len(grid["data"][0]["y"]) == model.config.n_layers
    words = " ".join(m.value for m in at.markdown)
    assert "Layers 0–1: patching “·ball” (position 3) restores" in words  # the differing word carries it at first
    assert "Layers 2–3: no single position restores half of it" in words
    assert "4 blocks, so the grid has 4 rows" in words and "learned position vector" in words
    runs = next(c for c in charts(at) if title(c) == "Next-token probabilities")
    assert [s["name"] for s in runs["data"]][:2] == ["clean", "corrupted"]


def test_patching_page_runs_the_chosen_cell_and_refuses_unequal_lengths():
    at = open_page(app(), "pages/patching.py")
    at.slider(key="patch.layer").set_value(0).run()
    at.selectbox(key="patch.pos").set_value(0).run()
    model = load_model("tiny-stories-1m")
    clean, corrupt = default_pair("tiny-stories-1m", "patch")
    target = int(trace(model, clean).probs.argmax())
    one = trace(model, corrupt, patch={"layer": 0, "position": 0, "source": trace(model, clean)})
    assert any(f"{float(one.probs[target]):.1%}" in c.value and "block 0" in c.value for c in at.caption)
    at.text_input(key="patch.corrupt").set_value("Lily found a big red doll. She picked up the").run()
    assert any("need the same number of tokens" in w.value for w in at.warning)


def test_patching_page_on_an_encoder_says_why_not():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/patching.py")
    assert any("is an encoder with no next-token output" in i.value for i in at.info)
    assert not charts(at)


def test_steering_page_moves_the_next_token_and_compares_continuations():
    at = open_page(app(), "pages/steering.py")
    model = load_model("tiny-stories-1m")
    positive, negative, prompt, layer, scale = steer_defaults("tiny-stories-1m", model.config.n_layers)
    vector = steering_vector(trace(model, positive), trace(model, negative), layer)
    steered = trace(model, prompt, steer={"layer": layer, "vector": vector, "scale": scale}).probs
    bars = next(c for c in charts(at) if "after the prompt" in title(c))
    series = {s["name"]: s["y"] for s in bars["data"]}
    assert max(series[f"steered ({scale:+.2f} × vector)"]) == pytest.approx(float(steered.max()), abs=1e-6)
    texts = [t.value for t in at.text]
    assert len(texts) == 2 and all(t.startswith(prompt + "▸") for t in texts) and texts[0] != texts[1]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Length of strength × vector"] == f"{scale * float(vector.norm()):.1f}"
    at.slider(key="steer.scale").set_value(0.0).run()
    bars = next(c for c in charts(at) if "after the prompt" in title(c))
    assert bars["data"][0]["y"] == bars["data"][1]["y"], "strength 0 is the model as it is"
    texts = [t.value for t in at.text]
    assert texts[0] == texts[1]


def test_steering_page_on_an_encoder_says_why_not():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/steering.py")
    assert any("is an encoder with no next-token output" in i.value for i in at.info)


def test_surprise_page_shows_the_models_own_loss():
    at = open_page(app(text=TEXT), "pages/surprise.py")
    model = load_model("tiny-stories-1m")
    tr = trace(model, TEXT, logits="all")
    loss = float(torch.nn.functional.cross_entropy(tr.all_logits[:-1], torch.tensor(tr.token_ids[1:])))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mean loss (cross-entropy)"] == f"{loss:.3f} nats/token"
    assert metrics["Perplexity"] == f"{math.exp(loss):.1f}"
    worst = surprisal(tr).most_surprising(5)
    assert at.dataframe[0].value["position"].tolist() == worst
    found = surprisal(tr)  # each expected token quoted, so a comma token cannot read as a separator
    expected = at.dataframe[0].value["the model expected"].tolist()
    assert expected == ["  ".join(f"“{visible(model.tokenizer.display(i))}”" for i in found.top_ids[t, :3].tolist())
                        for t in worst]
    line = next(c for c in charts(at) if title(c) == "Surprise of each token")
    assert len(line["data"][0]["y"]) == tr.n_tokens - 1


def test_surprise_page_on_an_encoder_says_why_not():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/surprise.py")
    assert any("is an encoder" in i.value and "perplexity" in i.value for i in at.info)
    assert not at.metric


@PACKAGED
def test_patching_page_on_smollm2_tells_the_fact_moving():
    at = open_page(app(model="smollm2-135m", text=TEXT), "pages/patching.py")
    words = " ".join(m.value for m in at.markdown)
    assert "“·France” (position 3)" in words and "moved to the last position by layer" in words


def test_saliency_page_shows_complete_integrated_gradients():
    at = open_page(app(text=TEXT), "pages/saliency.py")
    from core.interpret.saliency import saliency

    model = load_model("tiny-stories-1m")
    tr = trace(model, TEXT)
    found = saliency(model, tr.token_ids, int(tr.probs.argmax()))
    assert found.completeness_error < 0.01
    assert any(f"add up to {float(found.integrated.sum()):+.3f}" in c.value and "a rise of" in c.value
               for c in at.caption)
    bars = next(c for c in charts(at) if "pushed the logit" in title(c))
    assert bars["data"][0]["y"] == pytest.approx(found.integrated.tolist(), abs=1e-5)


def test_saliency_page_on_an_encoder_says_why_not():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/saliency.py")
    assert any("is an encoder with no next-token output" in i.value for i in at.info)


@pytest.mark.slow  # 64 steps of SmolLM2 forward and backward: ~12 s
@PACKAGED
def test_the_page_says_when_integrated_gradients_do_not_add_up():
    """SmolLM2's logit jumps along the path from the neutral input (off by several times the rise with 64 steps):
    the page warns, names the largest jump, and picks the strongest token by gradient × input instead."""
    at = open_page(app(model="smollm2-135m", text="The animal didn't cross the street because it was too tired."),
                   "pages/saliency.py")
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "do not add up" in warning and "jumps by up to" in warning
    assert any("mattered most by gradient × input" in c.value for c in at.caption)


def test_the_page_trusts_integrated_gradients_when_they_add_up():
    at = open_page(app(text="Lily and Tom went to the park to play with a red ball."), "pages/saliency.py")
    assert not at.exception and not any("do not add up" in w.value for w in at.warning)
    assert any("mattered most by integrated gradients" in c.value for c in at.caption)
