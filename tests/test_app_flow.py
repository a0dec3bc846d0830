"""AppTest for the Information flow page: the graph, its words and its head map checked against core.interpret.flow on the
embedded model, the threshold thinning the graph, an encoder followed at a chosen token, SmolLM2's 30 blocks."""

import pytest

from core import trace
from core.interpret.flow import contribution_flow, flow_record, routes
from core.loading.registry import load_model
from core.trace import grow
from tests.test_app import PACKAGED, app, charts, matrix, open_page, title

TEXT = "Lily found a ball. She picked up the"


def flow_of(name: str, text: str):
    model = load_model(name)
    tr = grow(model, trace(model, text), flow_record(model.config.post_norm))
    return tr, contribution_flow(model, tr)


def graph(at) -> dict:
    return next(c for c in charts(at) if title(c).startswith("What flows into"))


def test_flow_page_draws_the_routes_to_the_prediction():
    at = open_page(app(text=TEXT), "pages/flow.py")
    tr, flow = flow_of("tiny-stories-1m", TEXT)
    last = tr.n_tokens - 1
    top = load_model("tiny-stories-1m").tokenizer.display(int(tr.probs.argmax()))
    drawn = graph(at)
    assert f"(position {last}), which predicts “{top.replace(' ', '·')}”" in title(drawn)
    assert len(drawn["layout"]["yaxis"]["tickvals"]) == 4 + 1  # the input and one row pair per block
    edges = routes(flow, last, 0.04)
    words = " ".join(m.value for m in at.markdown)
    assert f"At threshold 0.04, {len(edges)} edges lead to the prediction of" in words
    assert "has 4 blocks of 4 heads" in words and "its output bias" in words
    heads = next(c for c in charts(at) if title(c).startswith("Each head's share"))
    assert matrix(heads["data"][0]["z"]) == pytest.approx(flow.heads_into(last).numpy(), abs=1e-6)
    at.slider(key="flow.threshold").set_value(0.2).run()
    fewer = len(routes(flow, last, 0.2))
    assert fewer < len(edges)
    assert f"At threshold 0.20, {fewer} edges lead" in " ".join(m.value for m in at.markdown)


def test_flow_page_refuses_a_text_too_long_to_draw():
    at = open_page(app(text="and then " * 40), "pages/flow.py")
    assert any("reads texts of up to 64 tokens" in i.value for i in at.info)
    assert not charts(at)


@PACKAGED
def test_flow_page_on_an_encoder_follows_a_chosen_token():
    at = open_page(app(model="minilm-l6", text="Lily and Tom went to the park to play."), "pages/flow.py")
    assert any("is an encoder: it makes no prediction" in i.value for i in at.info)
    assert "What flows into the final vector of “the” (position 6)" == title(graph(at))
    assert "blue edges run both ways" in " ".join(m.value for m in at.markdown)
    at.selectbox(key="flow.pos").set_value(1).run()
    assert title(graph(at)) == "What flows into the final vector of “lily” (position 1)"


@PACKAGED
@pytest.mark.slow
def test_flow_page_keeps_smollm2s_30_blocks_readable():
    at = open_page(app(model="smollm2-135m", text="The capital of France is"), "pages/flow.py")
    drawn = graph(at)
    assert "which predicts “·Paris”" in title(drawn)
    assert drawn["layout"]["yaxis"]["ticktext"][-1] == "block 29" and drawn["layout"]["height"] >= 900
    assert "most of it from “·France”" in " ".join(m.value for m in at.markdown)
