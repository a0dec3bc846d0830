"""The guided lesson, its quizzes, presenter mode and the export row: core.lesson's numbers agree with the model's
own computation, and the pages show them on the three offline models."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.lesson import lesson, most_split_word
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
OFFLINE = ["tiny-stories-1m", "smollm2-135m", "minilm-l6"]


@pytest.mark.parametrize("preset", ["tiny-stories-1m", "tiny-llama", "tiny-bert"])
def test_lesson_numbers_are_the_models_own(preset):
    model = tiny(preset, dropout=0.0) if preset != "tiny-bert" else tiny(preset)
    ids = [5, 9, 2, 7, 5, 9, 3]
    L = lesson(model, ids)
    cfg = model.config
    assert L.head == int(L.previous_token[0].argmax())
    assert torch.allclose(L.math.weights, L.math.model_weights, atol=1e-5)
    assert torch.allclose(L.pattern[L.query], L.math.model_weights, atol=1e-6)
    assert torch.equal(L.embed, model.embed.weight[ids[L.query]].float())
    projected = model.blocks[0].attn.out(L.heads_z.reshape(-1).to(model.embed.weight.dtype))  # heads side by side
    assert torch.allclose(projected.float(), L.attn_out, atol=1e-5)
    if not cfg.post_norm:  # pre-norm: each half adds to the stream
        assert torch.allclose(L.block_input + L.attn_out, L.resid_mid, atol=1e-5)
        assert torch.allclose(L.resid_mid + L.mlp_out, L.resid_post, atol=1e-5)
    if cfg.lm_head:
        logits = model(torch.tensor([ids]))[0].reshape(-1, cfg.vocab_size)[-1]
        assert L.top_ids[0] == int(logits.argmax()) == L.next_ids[0]
        assert L.by_temperature[1.0] == pytest.approx(L.top_probs, abs=1e-6)
        assert L.by_temperature[0.5][0] > L.top_probs[0] > L.by_temperature[2.0][0]  # colder is sharper
    else:
        assert L.top_ids is None and L.next_ids is None
        assert not L.hidden.any()


def test_an_encoder_lesson_follows_the_last_word_not_sep():
    from core.loading import registry

    model = registry.load_model("minilm-l6")
    L = lesson(model, "the cat sat")
    assert L.tokens[L.query] == "sat" and L.tokens[-1] == "[SEP]"


@pytest.mark.parametrize("preset", ["tiny-bert", "tiny-llama"])
def test_the_blocks_summary_follows_the_followed_token(preset):
    """The stack-of-blocks numbers are the followed token's: for an encoder the last word, not [SEP] after it."""
    from core.trace import trace

    model = tiny(preset) if preset == "tiny-bert" else tiny(preset, dropout=0.0)
    ids = [5, 9, 2, 7, 5, 9, 3]
    L = lesson(model, ids)
    assert L.summary.tokens[0] == L.tokens[L.query]
    last = trace(model, ids, record=lesson_record_of_last_block(model)).resid_post(model.config.n_layers - 1)[L.query]
    assert float(L.summary.resid_norm[-1 if model.config.post_norm else -2, 0]) == pytest.approx(
        float(last.norm()), rel=1e-5)


def lesson_record_of_last_block(model):
    from core.trace import hook

    return (hook(model.config.n_layers - 1, "hook_resid_post"),)


def test_an_encoder_lesson_summary_is_the_followed_words_not_seps():
    from core.loading import registry

    model = registry.load_model("minilm-l6")
    L = lesson(model, "the cat sat")
    assert L.summary.tokens[0] == "sat" and L.summary.tokens[-1] == "[SEP]"


def test_the_mask_question_draws_a_head_that_looks_ahead_on_an_encoder():
    from core.lesson import later_token_share

    decoder = lesson(tiny("tiny-llama", dropout=0.0), [5, 9, 2, 7, 5, 9, 3])
    assert float(decoder.later_share.abs().max()) == 0 and decoder.mask_head == decoder.head
    encoder = lesson(tiny("tiny-bert"), [5, 9, 2, 7, 5, 9, 3])
    assert encoder.mask_head == int(encoder.later_share.argmax()) and float(encoder.later_share.max()) > 0
    pattern = torch.tensor([[[0.5, 0.5], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])  # (heads, T, T)
    assert later_token_share(pattern).tolist() == [0.5, 0.0]  # row 0's weight on key 1; row 1 has no later key


@pytest.mark.parametrize("n_tokens, query", [(20, 19), (20, 18), (5, 4), (3, 1), (12, 8)])
def test_the_mask_window_holds_the_followed_row(n_tokens, query):
    from core.lesson import mask_window

    shown = mask_window(n_tokens, query, 8)
    assert query in shown and len(shown) == min(8, n_tokens) and shown.stop <= n_tokens


def test_quiz_answers_are_shuffled_and_point_at_the_right_option():
    from core.loading import registry
    from pages.common import quiz

    model = registry.load_model("tiny-stories-1m")
    texts = ["Once upon a time", "The cat sat on the mat", "Lily went to the park", "Tom had a big red ball",
             "The sun was hot", "She liked to sing"]
    firsts = {"mask": set(), "temp0": set()}
    for text in texts:
        L = lesson(model, text)
        for q in (quiz.mask(L, True), quiz.temperature_zero(L, model.tokenizer)):
            assert q.options[q.answer].startswith(("The cells above", "It always picks"))
            firsts[q.qid].add(q.answer)
    assert firsts["mask"] != {0} and firsts["temp0"] != {0}  # the right one is not always the first button


def test_most_split_word():
    from core.loading import registry

    tok = registry.load_model("tiny-stories-1m").tokenizer
    word, n = most_split_word(tok, "The astronaut photographed Saturn")
    assert word == "photographed" and n == len(tok.encode(" photographed")) > 1
    assert most_split_word(tok, "😀 !!") is None


def test_the_browser_script_holds_no_tag_streamlit_would_lift_out():
    """Streamlit takes <title>, <meta>, <html> … out of an injected script, which then silently never runs (the
    download buttons died this way): the script writes its tags with \\x3c."""
    script = (ROOT / "assets" / "ui" / "glassbox.js").read_text()
    assert not re.search(r"<[A-Za-z!/]", script)


def test_pages_draw_charts_only_through_chart_show():
    """One place gives every chart its download row, file name, text alternative and presenter size."""
    for path in list((ROOT / "pages").glob("*.py")) + list((ROOT / "pages" / "common").glob("*.py")):
        if path.name != "chart.py":
            assert "plotly_chart(" not in path.read_text(), path.name


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_lesson(model: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["model"] = model
    for k, v in params.items():
        at.query_params[k] = v
    run(at)
    at.switch_page("pages/lesson.py")
    return run(at)


def step_chart(at: AppTest):
    """The step's first chart that is not the architecture map every step draws."""
    return next(c for c in at.get("plotly_chart") if not c.proto.id.endswith("-lesson.map"))


def header(at: AppTest) -> str:
    return at.header[0].value


def shown_text(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.main.markdown, *at.main.caption])


PLACEHOLDER = re.compile(r"\{[A-Za-z_][\w.\[\]]*\}")  # an f-string that lost its f: "{cfg.head_dim}"


@pytest.mark.parametrize("model", OFFLINE)
def test_the_lesson_walks_every_step_on_every_offline_model(model):
    at = open_lesson(model)
    seen = [header(at)]
    texts = {}
    while not at.button(key="lesson.next").disabled:
        at.button(key="lesson.next").click()
        run(at)
        seen.append(header(at))
        texts[re.sub(r"^\d+\. ", "", seen[-1])] = shown_text(at)
        assert not PLACEHOLDER.search(texts[re.sub(r"^\d+\. ", "", seen[-1])]), seen[-1]
        for b in at.button:  # answer every quiz on the way, so its reveal is drawn too
            if b.key and b.key.startswith("quiz.") and b.key.endswith(".0"):
                b.click()
                run(at)
                break
    titles = [re.sub(r"^\d+\. ", "", s) for s in seen]
    assert 15 <= len(seen) <= 25 and titles[0] == "Your text"
    assert seen == [f"{i + 1}. {t}" for i, t in enumerate(titles)]
    assert "The mask" in titles and "Feed-forward layer" in titles and "The stack of blocks" in titles
    assert "√" in texts["÷ √d"] and "just before" not in texts["Query, key, value"]  # step 12 asks that
    if model == "minilm-l6":
        assert titles[-1] == "No next token: what an encoder gives" and "Logits" not in titles
    else:
        assert "after the last block: `" not in texts["The stack of blocks"]  # step "Logits" asks for it
        assert titles[-4:] == ["Logits", "Softmax: probabilities", "Temperature and sampling",
                               "The next token, and around again"]
    at.button(key="lesson.back").click()
    run(at)
    assert header(at) == seen[-2]


def test_an_encoders_lesson_gives_the_followed_words_own_numbers():
    """Steps 16 and 18 on MiniLM speak of the last word (`little`), not of [SEP] after it."""
    from core.loading import registry
    from core.trace import hook, trace
    from pages.common.sidebar import DEFAULT_TEXT

    model = registry.load_model("minilm-l6")
    last = model.config.n_layers - 1
    tr = trace(model, DEFAULT_TEXT, record=(hook(last, "hook_resid_post"),))
    q = tr.n_tokens - 2  # the word before [SEP]
    at = open_lesson("minilm-l6", **{"lesson.step": "18"})
    assert f"`{tr.tokens[q]}`, after block {last}" in shown_text(at)
    assert f"length {float(tr.resid_post(last)[q].norm()):.2f}" in shown_text(at)
    at = open_lesson("minilm-l6", **{"lesson.step": "16"})
    spec = step_chart(at).proto.spec
    assert f"{tr.tokens[q]} through all" in spec


@pytest.mark.parametrize("model", OFFLINE)
def test_the_mask_map_draws_the_followed_row_and_an_encoder_looking_ahead(model):
    import json

    at = open_lesson(model, **{"lesson.step": "9"})
    next(b for b in at.button if b.label.startswith("The cells above the diagonal")).click()
    run(at)
    spec = json.loads(step_chart(at).proto.spec)
    rows = spec["data"][0]["y"]
    followed = next(line for line in shown_text(at).splitlines() if "The token the lesson follows" in line)
    row = int(re.search(r"\(row (\d+)\)", followed).group(1))
    assert any(label.startswith(f"{row}:") for label in rows)  # its row is on the map the text speaks of
    title = spec["layout"]["title"]["text"]
    if model == "minilm-l6":
        share = float(re.search(r"\((\d+)% of the weight on later tokens\)", title).group(1))
        assert share > 5 and "masked cells" not in title
        from tests.test_app import matrix

        z = matrix(spec["data"][0]["z"])
        assert not np.isnan(z).any() and np.triu(z, 1).sum() > 0.05  # weight above the diagonal: nothing hidden
    else:
        assert "masked cells pale yellow" in title


@pytest.mark.parametrize("model", ["tiny-stories-1m", "smollm2-135m"])
def test_the_heads_step_says_what_the_opened_head_is_and_where_the_strongest_is(model):
    """Step 6 opens block 0's most previous-token-like head without saying so (step 12 asks); step 12's answer says
    it, with its share, and names the model's strongest previous-token head (SmolLM2's is deep in the stack)."""
    from core.loading import registry
    from pages.common.sidebar import DEFAULT_TEXT

    L = lesson(registry.load_model(model), DEFAULT_TEXT)
    prev = L.previous_token
    layer, head = divmod(int(prev.argmax()), prev.shape[1])
    at = open_lesson(model, **{"lesson.step": "12"})
    at.button(key="quiz.prev.skip").click()
    run(at)
    said = next(line for line in shown_text(at).splitlines() if "The head steps" in line)
    assert f"block 0's head {L.head}, is the one of block 0's {prev.shape[1]} heads" in said
    assert f"{float(prev[0, L.head]):.0%} of a token's weight" in said
    assert ("the model's strongest too" in said if (layer, head) == (0, L.head) else
            f"the model's strongest is layer {layer}, head {head} ({float(prev[layer, head]):.0%})" in said)


def test_a_step_link_opens_that_step_and_a_bad_one_is_refused():
    at = open_lesson("tiny-stories-1m", **{"lesson.step": "9"})
    assert header(at) == "9. The mask"
    at = open_lesson("tiny-stories-1m", **{"lesson.step": "99"})
    assert header(at) == "1. Your text" and any("lesson.step" in w.value for w in at.warning)


def test_a_guess_comes_before_the_answer_and_counts_in_the_score():
    at = open_lesson("tiny-stories-1m", **{"lesson.step": "9"})
    assert [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")] == ["lesson.map"]  # no mask before the guess
    right = next(b for b in at.button if b.label.startswith("The cells above the diagonal"))
    right.click()
    run(at)
    assert any("Right" in s.value for s in at.success)
    assert step_chart(at)  # now the real map, with its mask
    assert any("1 right of 1" in c.value for c in at.main.caption)
    at.button(key="lesson.next").click()
    run(at)
    at.switch_page("pages/quiz.py")
    run(at)
    assert at.metric[0].value == "1 / 1"  # the score follows the learner to the Quiz page


@pytest.mark.parametrize("model", OFFLINE)
def test_the_quiz_page_asks_what_applies_to_the_model(model):
    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["model"] = model
    run(at)
    at.switch_page("pages/quiz.py")
    run(at)
    questions = [s.value for s in at.subheader if s.value.startswith("Question")]
    assert len(questions) == (3 if model == "minilm-l6" else 5)
    wrong = next(b for b in at.button if b.label == "None: every token sees every token")
    wrong.click()
    run(at)
    if model == "minilm-l6":  # an encoder masks nothing: that answer is right
        assert any("Right" in s.value for s in at.success)
    else:
        assert any("You said None" in e.value for e in at.error)


def test_presenter_link_switches_it_on_and_charts_get_large_type():
    import json

    at = AppTest.from_file(APP, default_timeout=240)
    at.query_params["present"] = "1"
    run(at)
    at.switch_page("pages/next_token.py")
    run(at)
    assert at.toggle(key="present").value is True
    assert any("font-size: 22px" in h.proto.body for h in at.get("html"))
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["font"]["size"] >= 20
    assert at.get("plotly_chart")[0].proto.alt.startswith("Bar chart: Top 15 of the softmax")  # for screen readers
