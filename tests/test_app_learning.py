"""AppTest for the learning pages: train it yourself (pretraining and fine-tuning), zero- vs few-shot prompting, and
the generation loop with its KV cache — asserting on what the learner sees."""

import math
import re

import pytest

from core.prompting import TASKS
from tests.test_app import PACKAGED, app, charts, matrix, open_page, title

TASK_QUERIES = {name: t.pattern.format(x=t.query[0], y="").rstrip(" :") for name, t in TASKS.items()}


@pytest.mark.slow  # pretrains from the page
def test_pretraining_from_scratch_in_the_app():
    at = open_page(app(), "pages/fine_tuning.py")
    at.select_slider(key="pt.steps").set_value(300).run()
    probe = next(c.value for c in at.caption if "timed just now" in c.value)
    rate, steps, seconds = re.search(r"([\d.]+) steps a second .* so ([\d,]+) steps should take about ([\d,]+) s",
                                     probe).groups()
    assert steps == "300" and float(seconds.replace(",", "")) == pytest.approx(300 / float(rate), rel=0.06, abs=1)
    at.button(key="pt.go").click().run()
    assert not at.exception
    curve = next(c for c in charts(at) if title(c).startswith("Pretraining loss"))
    losses = curve["data"][0]["y"]
    assert len(losses) == 300 and losses[0] == pytest.approx(math.log(2048), abs=0.1) and losses[-1] < 5
    table = next(d.value for d in at.dataframe if "step" in d.value.columns)
    assert list(table["step"]) == [0, 75, 150, 225, 300]
    assert any("predicts" in m.value for m in at.markdown)
    assert any("Step 300: layer 0, head 0" in title(c) for c in charts(at))
    took = next(c.value for c in at.caption if c.value.startswith("This run: 300 steps in"))
    seconds, rate = map(float, re.search(r"in ([\d.]+) s on this server \(([\d.]+) steps a second\)", took).groups())
    assert rate + 0.05 >= 299 / (seconds + 0.05)  # the steps after the first, over at most the whole run's time


def test_fine_tuning_a_copy_in_the_app():
    at = open_page(app(), "pages/fine_tuning.py")
    at.button(key="ft.go").click().run()
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    gain = metrics["P(“Zorbo” | prompt)"]
    assert float(gain.value) > 0.5 and "×" in gain.delta
    from core.learning import fingerprint
    from core.loading import registry

    shared = fingerprint(registry.load_model("tiny-stories-1m"))
    shown = metrics["Fingerprint of the shared model's weights"]
    taken = next(c.value for c in at.caption if "taken just before the fine-tuning" in c.value)
    assert f"just before the fine-tuning ({shared}), just after it ({shared})" in taken  # both, compared
    assert shown.value == shared and shown.delta == "unchanged"
    assert re.search(r"This run: 40 steps in [\d.]+ s", "\n".join(c.value for c in at.caption))
    assert float(metrics["Loss on a story it never trained on (forgetting)"].value) > 0
    compare = next(c for c in charts(at) if title(c).startswith("Next token after"))
    assert [s["name"] for s in compare["data"]] == ["before", "after fine-tuning"]
    assert any(title(c).startswith("Which weights moved") for c in charts(at))


def test_prompting_on_the_embedded_model_says_it_was_never_taught_this():
    at = open_page(app(), "pages/prompting.py")
    assert any("never trained on instructions" in i.value for i in at.info)
    assert any("with 0 to 5 examples" in title(c) for c in charts(at))
    assert {m.label: m for m in at.metric}["Fingerprint of all the weights (SHA-256 of every parameter)"].delta == \
        "unchanged by prompting"
    shows = next(d.value for d in at.dataframe if "what it shows here" in d.value.columns)
    said = next(m.value for m in at.markdown if m.value.startswith("**On tiny-stories-1m"))
    task = at.selectbox(key="fs.task").value
    assert said.removeprefix("**On tiny-stories-1m ").split(":")[0] in {
        "the examples teach the task", "this task shows no few-shot effect", "this task fails",
        "the examples hurt here", "this task shows no clear effect"} and task in list(shows["task"])
    assert f"{TASK_QUERIES[task]}:" in at.code[0].value


@pytest.mark.slow  # SmolLM2 asked every task with 0 to 5 examples: ~20 s
@PACKAGED
def test_few_shot_opens_on_the_task_that_shows_the_effect_on_smollm2():
    at = open_page(app(model="smollm2-135m"), "pages/prompting.py")
    assert at.selectbox(key="fs.task").value == "Sentiment"  # measured: the examples help it most
    curve = next(c for c in charts(at) if "examples" in title(c))["data"][0]["y"]
    assert curve[0] < 0.4 and curve[1] > 0.6 and curve[1] > 2 * curve[0], curve  # one example teaches the format
    said = next(m.value for m in at.markdown if m.value.startswith("**On smollm2-135m"))
    assert "the examples teach the task" in said and f"from {curve[0]:.2f} with none to {max(curve[1:]):.2f}" in said
    shows = next(d.value for d in at.dataframe if "what it shows here" in d.value.columns)
    assert dict(zip(shows["task"], shows["what it shows here"])) == {
        "Sentiment": "the examples help", "Capital cities": "right without examples",
        "English → French": "fails with or without examples"}
    at.toggle(key="fs.chat").set_value(True).run()
    assert "<|im_start|>user" in at.code[0].value and not at.exception
    writes = next(m.value for m in at.markdown if m.value.startswith("**What it writes"))
    assert writes.endswith("then it ends its turn (`<|im_end|>`).") and writes.count("<|im_end|>") == 1, writes


def test_generation_loop_and_kv_cache():
    at = open_page(app(text="Once upon a time"), "pages/generation.py")
    assert any("prefill" in m.value for m in at.markdown)
    at.slider(key="gen.step").set_value(3).run()
    assert any("only the token chosen at step 2" in m.value for m in at.markdown)
    timing = next(d.value for d in at.dataframe if "speed-up" in d.value.columns)
    assert list(timing["same token"]) == ["yes", "yes"] and "a story (255 tokens)" in list(timing["after"])
    caption = next(c.value for c in at.caption if "the median of 5 runs" in c.value)
    assert caption_matches_the_timings(timing, caption)
    cache_map = next(c for c in charts(at) if "computed now" in title(c))
    z = matrix(cache_map["data"][0]["z"])
    assert (z[:, -1] == 1).all() and (z.sum(axis=1) == 1).all(), "one new token's k and v computed in every layer"
    assert any("no grouped-query attention" in m.value for m in at.markdown)
    sizes = {m.label: m.value for m in at.metric}  # binary units, named as such: 1 KiB = 1,024 bytes
    assert sizes["Cache after this step"].endswith(" KiB") and sizes["At the full context (256 tokens)"] == "1.0 MiB"


def spread(cell: str) -> tuple[float, float, float]:
    """'12.3 ms (11.0–14.2)' or '3.1× (2.9–3.3)' → (median, low, high)."""
    median, low, high = re.fullmatch(r"([\d.]+)(?: ms|×) \(([\d.]+)–([\d.]+)\)", cell).groups()
    return float(median), float(low), float(high)


def caption_matches_the_timings(table, caption: str) -> bool:
    """Every claim the timing table and its caption make follows from the figures the table shows (where two shown
    ends are equal, rounding to one decimal hides which way they lie, and either claim is accepted)."""
    speedups = []
    for _, row in table.iterrows():
        cached, uncached = spread(row["with the KV cache"]), spread(row["recomputing everything"])
        assert cached[1] <= cached[0] <= cached[2] and uncached[1] <= uncached[0] <= uncached[2]
        if cached[1] != uncached[2] and uncached[1] != cached[2]:
            overlap = cached[1] < uncached[2] and uncached[1] < cached[2]
            assert row["faster"] == ("within noise" if overlap else "the cache" if cached[0] < uncached[0]
                                     else "recomputing"), row
        speedups.append(spread(row["speed-up"]))
    short, long = speedups
    if long[1] == short[2] or short[1] == long[2]:
        return any(claim in caption for claim in ("grew with the length", "larger for the shorter text",
                                                  "cannot tell the two savings apart"))
    if long[1] > short[2]:
        return "the saving grew with the length" in caption
    if short[1] > long[2]:
        return "larger for the shorter text" in caption
    return "cannot tell the two savings apart" in caption and "grew" not in caption


@pytest.mark.slow  # times SmolLM2 with and without the cache
@PACKAGED
def test_generation_page_shows_gqa_saving_on_smollm2():
    at = open_page(app(model="smollm2-135m", text="The capital of France is"), "pages/generation.py")
    assert any("3× smaller" in m.value for m in at.markdown)


def test_generation_page_on_an_encoder():
    at = open_page(app(model="minilm-l6"), "pages/generation.py")
    assert any("does not generate" in i.value for i in at.info)
