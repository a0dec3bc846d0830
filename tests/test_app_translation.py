"""AppTest for the Translation page (the English→French encoder–decoder) and for every other page with the translator
chosen in the sidebar: what the learner sees, against the core's own numbers."""

import re

import numpy as np
import pytest

from core import load_model
from core.loading.registry import ENTRIES
from core.seq2seq import translate
from tests.test_app import PAGES, app, charts, matrix, open_page, title

pytestmark = pytest.mark.skipif("translator-en-fr" not in ENTRIES, reason="the translator is not in assets/")
PAGE = "pages/translation.py"


def chart(at, starts: str) -> dict:
    return next(c for c in charts(at) if title(c).startswith(starts))


def test_translation_page_shows_the_french_and_a_crossing_alignment():
    at = open_page(app(), PAGE)
    assert any(m.value == "### la petite fille voit une voiture rouge" for m in at.markdown)
    assert any("same" in s.value for s in at.success)
    cross = chart(at, "Cross-attention, decoder layer 1")
    z = matrix(cross["data"][0]["z"])
    rows, cols = cross["data"][0]["y"], cross["data"][0]["x"]
    assert z.shape == (8, 8) and np.allclose(z.sum(1), 1, atol=1e-3)  # 7 French words + </s>; 7 English + </s>
    expected = translate(load_model("translator-en-fr"), "the small girl sees a red car").trace.cross_pattern(1)
    assert np.allclose(z, expected.mean(0).numpy(), atol=1e-6)
    voiture = rows.index("5:une→voiture")
    rouge = rows.index("6:voiture→rouge")
    assert cols[int(z[voiture].argmax())] == "6:car" and cols[int(z[rouge].argmax())] == "5:red"  # the crossing
    said = " ".join(m.value for m in at.markdown)
    assert "The alignment crosses: *voiture* reads “car”, then *rouge* reads “red”" in said
    assert "Writing *une* it reads “car”" in said
    masked = chart(at, "Decoder masked self-attention")
    assert np.isnan(matrix(masked["data"][0]["z"])[0, 1:]).all()  # <s> sees nothing after itself
    assert not np.isnan(matrix(chart(at, "Encoder self-attention")["data"][0]["z"])).any()


@pytest.mark.parametrize("text, shown", [
    ("the zebra sees a car", "“zebra”"), ("the cat 🐈 sees a car", "“🐈”"), ("", "Type an English sentence"),
    ("le chat voit la souris", "“le”"), ("the cat " * 30, "at most 31"),
    ("<s> </s>", "“<”"),
])
def test_bad_input_gets_a_clear_message_and_no_translation(text, shown):  # a lone surrogate: test_seq2seq
    at = open_page(app(**{"tr.text": text}), PAGE)
    assert any(shown in w.value for w in at.warning), [w.value for w in at.warning]
    assert not any(m.value.startswith("### ") for m in at.markdown)


def test_a_sentence_outside_the_grammar_is_flagged():
    at = open_page(app(**{"tr.text": "cat the sees a car"}), PAGE)
    assert any("not a sentence of the grammar" in w.value for w in at.warning)
    assert any(m.value.startswith("### ") for m in at.markdown)  # it still shows what the model wrote
    assert any("needs the correct French sentence" in i.value for i in at.info)


def test_stepping_through_shows_each_word_and_where_it_looked():
    at = open_page(app(**{"tr.text": "a big dog eats the green apple"}), PAGE)
    at.slider(key="tr.step").set_value(5).run()  # row 5: fed "<s> un grand chien mange la", writes "pomme"
    bars = chart(at, "Step 5")
    assert bars["data"][0]["y"][0] == "pomme" and bars["data"][0]["x"][0] > 0.9
    looked = chart(at, "…and where it looked")["data"][0]
    assert looked["y"][int(np.argmax(looked["x"]))] == "6:apple" and looked["y"][-1] == "7:&lt;/s&gt;"


def test_teacher_forcing_and_a_wrong_word():
    at = open_page(app(), PAGE)
    table = at.dataframe[0].value
    assert list(table.columns)[1] == "fed (inference: its own words)"
    at.toggle(key="tr.forcing").set_value(True).run()
    table = at.dataframe[0].value
    assert list(table.columns)[1] == "fed (training: the correct words)"
    assert list(table["predicts"]) == ["la", "petite", "fille", "voit", "une", "voiture", "rouge", "</s>"]
    at.slider(key="tr.wrong_at").set_value(3).run()
    at.selectbox(key="tr.wrong").set_value("garçon").run()
    body = " ".join(m.value for m in at.markdown)
    assert "**Inference** fed “garçon” at position 3" in body and "position 3 is fed “fille”" in body


def test_bertviz_shows_the_three_attentions_offline():
    at = open_page(app(), PAGE)
    assert not at.get("iframe"), "bertviz only on request"
    at.toggle(key="tr.bertviz").set_value(True).run()
    html = at.get("iframe")[0].proto.srcdoc
    assert "cdnjs" not in html and "https://" not in html.split("<script>", 1)[0]
    assert re.findall(r'"name": "(\w+)"', html)[:3] == ["Encoder", "Decoder", "Cross"]


def test_snapshots_show_how_it_learned():
    at = open_page(app(), PAGE)
    learned = next(d.value for d in at.dataframe if "training step" in d.value.columns)
    assert list(learned["training step"])[0] == 0 and list(learned["its translation of your sentence"])[-1] == \
        "la petite fille voit une voiture rouge"
    assert list(learned["its translation of your sentence"])[0] != "la petite fille voit une voiture rouge"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_handles_the_translator(page):
    at = open_page(app(model="translator-en-fr"), page)
    assert at.title
    said = " ".join(i.value for i in at.info)
    if page in ("pages/home.py", "pages/positions.py", PAGE):
        assert "its views do not apply" not in said
    else:
        assert "is an encoder–decoder" in said and "its views do not apply" in said


def test_home_and_positions_describe_the_translator():
    at = open_page(app(model="translator-en-fr"), PAGES[0])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Layers"] == "2 + 2" and metrics["Model"] == "translator-en-fr"
    assert any("encoder–decoder" in c.value and "ReLU" in c.value for c in at.caption)
    at = open_page(app(model="translator-en-fr"), "pages/positions.py")
    assert any("(this model's scheme)" in s.value for s in at.subheader)
    assert not any("Word-order" in s.value for s in at.subheader)


def test_the_translation_page_draws_the_encoder_decoder_as_one_picture():
    at = open_page(app(model="translator-en-fr"), "pages/translation.py")
    cfg = load_model("translator-en-fr").config
    first = title(charts(at)[0])
    assert first.startswith("translator-en-fr, an encoder–decoder") and f"d_model {cfg.d_model}" in first
