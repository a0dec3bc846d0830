"""The guided lesson as pictures: every step draws the architecture map with its part lit and at least one chart,
tables only behind "the numbers", and each picture's numbers are the Lesson's own (which tests/test_lesson.py checks
against the trace): q·k bars equal the recomputed dots, the softmax bars sum to 1, the stacked values add up to
the head's output, the residual strips are x, attention's output and their sum."""

import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from tests.test_app import PACKAGED
from tests.test_lesson import header, open_lesson, run

MODELS = ["tiny-stories-1m", "minilm-l6"]


def charts(at) -> dict[str, dict]:
    """Every chart on the page by its key (the part of the element id after the last '-')."""
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def lesson_of(model: str):
    from core.lesson import lesson
    from core.loading import registry
    from pages.common.sidebar import DEFAULT_TEXT

    return lesson(registry.load_model(model), DEFAULT_TEXT)


def values(trace: dict, axis: str = "y") -> np.ndarray:
    """A trace's numbers as floats (plotly's JSON may hold them as a typed-array dict)."""
    from tests.test_app import matrix

    raw = trace[axis]
    return np.asarray(matrix(raw) if isinstance(raw, dict) else raw, dtype=float).reshape(-1)


def answer_quiz(at) -> None:
    for b in at.button:
        if b.key and b.key.startswith("quiz.") and b.key.endswith(".0"):
            b.click()
            run(at)
            return


@pytest.mark.parametrize("model", MODELS)
def test_every_step_shows_the_map_lit_and_a_chart_and_tables_only_on_request(model):
    at = open_lesson(model)
    while True:
        answer_quiz(at)
        shown = charts(at)
        step = header(at)
        assert "lesson.map" in shown, step
        lit = [s for s in shown["lesson.map"]["layout"].get("shapes", [])
               if s.get("line", {}).get("color", "").lower() == "#facc15"]
        assert lit, f"{step}: nothing lit on the map"
        tables_in_expanders = sum(len(e.table) for e in at.expander if e.label == "the numbers")
        assert len(at.main.table) == tables_in_expanders, f"{step}: a table outside 'the numbers'"
        if at.button(key="lesson.next").disabled:
            break
        at.button(key="lesson.next").click()
        run(at)


def step(model: str, number: int, quiz: bool = False):
    at = open_lesson(model, **{"lesson.step": str(number)})
    if quiz:
        answer_quiz(at)
    return at


@pytest.mark.parametrize("model", MODELS)
def test_the_attention_bars_are_the_lessons_numbers(model):
    L = lesson_of(model)
    m, T = L.math, len(L.tokens)
    assert T <= 12  # the default text: every key is drawn
    scores = charts(step(model, 7))["lesson.scores.fig"]
    np.testing.assert_allclose(values(scores["data"][0]), m.dots.numpy(), atol=1e-4)
    scaled = charts(step(model, 8))["lesson.scale.fig"]
    np.testing.assert_allclose(values(scaled["data"][0]), m.scaled.numpy(), atol=1e-4)
    np.testing.assert_allclose(values(scaled["data"][1]), m.dots.numpy(), atol=1e-4)  # the bars before, outlined
    weights = values(charts(step(model, 10))["lesson.softmax.fig"]["data"][0])
    np.testing.assert_allclose(weights, m.weights.numpy(), atol=1e-4)
    assert abs(weights.sum() - 1) < 1e-5
    parts = [t for t in charts(step(model, 11))["lesson.values.fig"]["data"] if t["type"] == "bar"]
    np.testing.assert_allclose(sum(values(t) for t in parts), m.z.numpy(), atol=1e-5)


@pytest.mark.parametrize("model", MODELS)
def test_the_mask_is_drawn_on_the_bars_of_a_row_with_later_keys(model):
    from core.lesson import mask_window

    L = lesson_of(model)
    m = L.mask_math
    window = list(mask_window(len(L.tokens), L.query))
    shown = charts(step(model, 9, quiz=True))
    bars, after = shown["lesson.mask.scores"]["data"], shown["lesson.mask.weights"]["data"]
    hidden = (~m.visible.numpy())[window]
    visible = values(bars[0])
    np.testing.assert_allclose(visible[~hidden], m.scaled.numpy()[window][~hidden], atol=1e-4)
    masked = [t for t in bars if t.get("name", "").startswith("masked")]
    if model == "minilm-l6":
        assert not hidden.any() and not masked  # an encoder masks nothing
    else:
        assert hidden.sum() > 0 and len(masked[0]["x"]) == hidden.sum() and masked[0]["text"][0] == "−∞"
        assert masked[0]["marker"]["pattern"]["shape"] == "/"
        np.testing.assert_allclose(values(after[0])[~hidden], m.weights.numpy()[window][~hidden], atol=1e-5)
        assert float(m.weights[~m.visible].sum()) == 0 and abs(float(m.weights.sum()) - 1) < 1e-5


@pytest.mark.parametrize("model", MODELS)
def test_the_residual_add_and_feed_forward_draw_the_lessons_vectors(model):
    L = lesson_of(model)
    add = charts(step(model, 14))["lesson.add.fig"]
    rows = [values(t, "z") for t in add["data"]]
    for row, vector in zip(rows, (L.block_input, L.attn_out, L.resid_mid)):
        np.testing.assert_allclose(row, vector.numpy(), atol=1e-5)
    names = [a["text"] for a in add["layout"]["annotations"]]
    assert any(f"‖·‖ {float(L.resid_mid.norm()):.2f}" in n for n in names)
    mlp = charts(step(model, 15))["lesson.mlp.fig"]
    bar = next(t for t in mlp["data"] if t["type"] == "bar")
    np.testing.assert_allclose(values(bar), L.mlp_hidden.numpy(), atol=1e-5)
    strongest = int(np.argmax(np.abs(L.mlp_hidden.numpy())))
    assert any(a["text"] == f"unit {strongest}" for a in mlp["layout"]["annotations"])


def test_masked_keys_are_hatched_minus_infinity_bars_and_signs_follow_the_convention():
    from pages.common import figures

    fig = figures.key_bars(["a", "b", "c"], [1.0, -2.0, 0.5], masked=[False, False, True])
    assert isinstance(fig, go.Figure)
    shown, masked = fig.data[0], fig.data[-1]
    assert list(shown.marker.color[:2]) == [figures.POSITIVE, figures.NEGATIVE]
    assert np.isnan(shown.y[2]) and masked.text == ("−∞",) and masked.marker.pattern.shape == "/"
    strip = figures.strips({"v": np.array([1.0, -3.0])}).data[0]
    assert strip.colorscale == go.Heatmap(colorscale=figures.DIVERGING).colorscale and strip.zmin == -strip.zmax
    assert re.search(r"‖·‖ 3\.16", figures.strips({"v": np.array([1.0, -3.0])}).layout.annotations[0].text)


@pytest.mark.parametrize("model, folded", [("tiny-stories-1m", False), pytest.param("smollm2-135m", True, marks=PACKAGED)])
def test_the_map_starts_folded_only_when_it_is_taller_than_a_screen(model, folded):
    """SmolLM2's 30 blocks draw a map of ~1,100 px: it starts folded, its label saying why, so each step's own view
    comes first; the embedded model's 4 blocks stay open."""
    at = open_lesson(model)
    place = next(e for e in at.expander if e.label.startswith("Where this step is in the model"))
    assert place.proto.expanded is not folded
    assert ("open to see it" in place.label) is folded
    assert "lesson.map" in charts(at)  # drawn either way
