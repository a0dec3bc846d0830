"""AppTest for Two models side by side: the embedded model beside the learner's fine-tuned copy (one tokenizer: every
view lines up), beside an encoder (what an encoder cannot show, said), and beside SmolLM2 (compared per byte)."""

import math

import pytest
import torch

from core import trace
from core.config import PRESETS
from core.interpret.comparison import bits_per_byte, config_rows
from core.interpret.surprisal import surprisal
from core.learning import fine_tune
from core.loading.registry import load_model
from tests.test_app import PACKAGED, app, charts, open_page, title

TEXT = "Lily and Tom went to the park to play."


def test_two_models_sets_the_fine_tuned_copy_beside_the_original():
    at = open_page(app(text=TEXT), "pages/fine_tuning.py")
    at.slider(key="ft.steps").set_value(10).run()
    at.button(key="ft.go").click().run()
    at.switch_page("pages/two_models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="two.other").value == "your fine-tuned copy of tiny-stories-1m"
    assert any("The same tokens with the same ids" in c.value for c in at.caption)
    base = load_model("tiny-stories-1m")
    lines = [line for line in at.session_state["ft.texts"].splitlines() if line.strip()]
    tuned = fine_tune(base, lines, 10, lr=at.session_state["ft.lr"], seed=at.session_state["ft.seed"])
    bars = next(c for c in charts(at) if title(c) == "Next-token probabilities after your text")
    series = {s["name"]: s["y"] for s in bars["data"]}
    assert max(series["fine-tuned copy"]) == pytest.approx(float(trace(tuned, TEXT).probs.max()), abs=1e-4)
    assert max(series["tiny-stories-1m"]) == pytest.approx(float(trace(base, TEXT).probs.max()), abs=1e-6)
    metrics = [m.value for m in at.metric]
    loss = float(surprisal(trace(base, TEXT, logits="all")).mean_loss)
    assert metrics[0] == f"{loss:.3f}" and metrics[1] == f"{math.exp(loss):.1f}"
    assert any("Same tokens, so the losses per token compare directly" in c.value for c in at.caption)


def test_two_models_without_a_fine_tuned_copy_says_how_to_make_one():
    at = open_page(app(text=TEXT, **{"two.other": "tiny-stories-1m"}), "pages/two_models.py")
    assert any("Fine-tune a copy of the embedded model" in c.value for c in at.caption)


@PACKAGED
def test_two_models_beside_an_encoder_say_what_it_cannot_show():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/two_models.py")
    assert at.selectbox(key="two.other").value == "tiny-stories-1m"
    infos = " ".join(i.value for i in at.info)
    assert "**minilm-l6** is an encoder: it reads the words after each token too" in infos
    assert "only decoders are compared here" in infos
    assert any("minilm-l6 needs 12 tokens and tiny-stories-1m 10" in c.value for c in at.caption)
    assert [title(c) for c in charts(at)] == ["tiny-stories-1m: next-token probabilities after your text",
                                              "minilm-l6: layer 3, head 0", "tiny-stories-1m: layer 2, head 0"]
    table = at.dataframe[0].value
    assert list(table.columns) == ["", "minilm-l6", "tiny-stories-1m"]
    assert table.loc[table[""] == "blocks", "minilm-l6"].item() == "6"


@PACKAGED
@pytest.mark.slow
def test_two_models_compares_tiny_and_smollm2_per_byte():
    at = open_page(app(text=TEXT), "pages/two_models.py")
    assert at.selectbox(key="two.other").value == "smollm2-135m"
    shown = [m.value for m in at.metric if m.label == "Bits per byte"]
    expected = []
    for name in ("tiny-stories-1m", "smollm2-135m"):
        tr = trace(load_model(name), TEXT, logits="all")
        expected.append(f"{bits_per_byte(surprisal(tr), tr.token_bytes):.3f}")
    assert shown == expected
    line = next(c for c in charts(at) if title(c).startswith("Surprise of each token, over"))
    assert [s["name"] for s in line["data"]] == ["tiny-stories-1m", "smollm2-135m"]
    assert line["data"][0]["x"][-1] == line["data"][1]["x"][-1] == len(TEXT.encode())
    assert torch.tensor([float(v) for v in shown]).argmin() == 0  # the embedded model knows its stories best
    assert any("tiny-stories-1m is less surprised by your text" in c.value for c in at.caption)


def test_the_side_by_side_table_says_grouped_query_attention_and_the_kind_of_feed_forward():
    """'attention heads per block: 9' hid that SmolLM2's 9 query heads share 3 key/value heads, and '1,536 vs 512'
    compared a 3-matrix SwiGLU with a 2-matrix GELU layer without saying so."""
    rows = config_rows(PRESETS["tiny-stories-1m"], PRESETS["tiny-llama"], (1e6, 1e6), ("gpt", "llama"))
    table = {label: (a, b) for label, a, b in zip(rows[""], rows["gpt"], rows["llama"], strict=True)}
    assert table["attention heads per block"] == ("4", "4 (sharing 2 key/value heads)")
    assert table["feed-forward width, kind"] == ("512; GELU; 2 matrices", "172; SwiGLU; 3 matrices")
