"""A Hub repo is hostile until checked: crafted repos in a standard Hugging Face cache (offline) — huge contexts,
100,000 layers, huge widths, configs of the wrong kind, chat templates that compute for ever or ask for gigabytes,
tokenizers that panic, weight files and indexes that lie — are each refused or survived within 20 s and +0.6 GB of
resident memory, with an ordinary exception whose message names the repo and its files, never a server path."""

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
import torch

from core import load_model, trace
from core.budget import TooBig
from core.loading import hub
from core.loading.chat_template import TemplateRefused
from core.tokenizer import TokenizerFailed, render_chat

pytest.importorskip("transformers")
from tests.test_hub import COMMIT, gpt2, in_cache, llama  # noqa: E402

SECONDS, EXTRA_BYTES = 20.0, 600_000_000
MESSAGES = [{"role": "user", "content": "Hello"}]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bounded(case: str, call):
    """Run `call`, sampling this process's resident memory every 5 ms: it must end (value or ordinary exception)
    within SECONDS and grow the resident set by less than EXTRA_BYTES. Returns what it returned or raised."""
    start_rss, peak, done = rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        outcome = call()
    except Exception as err:  # an ordinary exception is an acceptable end; a BaseException (a panic) fails here
        outcome = err
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    grown = max(peak[0], rss()) - start_rss
    said = f": {str(outcome)[:110]}" if isinstance(outcome, Exception) else ""
    print(f"{case}: {seconds:.2f} s, +{grown / 1e6:.0f} MB, {type(outcome).__name__}{said}")
    assert seconds < SECONDS, f"{case} took {seconds:.1f} s"
    assert grown < EXTRA_BYTES, f"{case} grew the process by {grown / 1e6:.0f} MB"
    return outcome


def named(err: Exception, repo: str, tmp_path: Path, *words: str) -> None:
    text = str(err)
    assert repo in text, text
    assert str(tmp_path) not in text and "snapshots" not in text, f"a server path in: {text}"
    for word in words:
        assert word in text, text


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    root = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GLASSBOX_MEMORY_BUDGET", "2G")  # the same verdicts on every machine
    return root


def config_only(config: dict | str | bytes):
    def build(folder: Path):
        data = config if isinstance(config, (str, bytes)) else json.dumps(config)
        (folder / "config.json").write_bytes(data.encode() if isinstance(data, str) else data)

    return build


LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 300, "hidden_size": 64,
         "intermediate_size": 172, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "max_position_embeddings": 128}
GPT2 = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": 320, "n_positions": 64,
        "n_embd": 32, "n_layer": 2, "n_head": 4}

REFUSED_CONFIGS = {  # case: (config.json, what the message says)
    "100,000 layers": ({**LLAMA, "num_hidden_layers": 100_000}, "n_layers=100,000 is over"),
    "hidden_size 1e6 (a float)": ({**LLAMA, "hidden_size": 1e6}, "d_model must be a whole number"),
    "hidden_size 1,000,000": ({**LLAMA, "hidden_size": 1_000_000, "num_attention_heads": 1000,
                               "num_key_value_heads": 1000}, "d_model=1,000,000 is over"),
    "hidden_size 10**100": ({**LLAMA, "hidden_size": 10**100}, "about 10^100"),
    "hidden_size a string": ({**LLAMA, "hidden_size": "768"}, "whole number"),
    "hidden_size true": ({**LLAMA, "hidden_size": True}, "whole number"),
    "hidden_size negative": ({**LLAMA, "hidden_size": -64}, "positive"),
    "zero heads": ({**LLAMA, "num_attention_heads": 0}, "positive"),
    "zero key/value heads": ({**LLAMA, "num_key_value_heads": 0}, "positive"),
    "rope_theta NaN": ({**LLAMA, "rope_theta": float("nan")}, "finite"),
    "MLP 10,000,000 wide": ({**LLAMA, "intermediate_size": 10_000_000}, "mlp_dim=10,000,000 is over"),
    "vocabulary of 3,000,000": ({**LLAMA, "vocab_size": 3_000_000}, "vocab_size=3,000,000 is over"),
    "a key missing": ({k: v for k, v in LLAMA.items() if k != "hidden_size"}, "lacks 'hidden_size'"),
    "a list for a number": ({**LLAMA, "num_hidden_layers": [2]}, "whole number"),
    "GPT-2 with 4,194,304 learned positions": ({**GPT2, "n_positions": 4_194_304, "n_embd": 768, "n_head": 12},
                                              "n_ctx=4,194,304 is over"),
    "GPT-2 with 1,000,000 learned positions": ({**GPT2, "n_positions": 1_000_000, "n_embd": 768, "n_head": 12},
                                              "too big for this server"),
    "Llama 3.1 405B's shape": ({**LLAMA, "vocab_size": 128_256, "hidden_size": 16_384, "intermediate_size": 53_248,
                               "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8},
                              "too big for this server"),
    "a 2,000,000-token vocabulary": ({**LLAMA, "vocab_size": 2_000_000, "hidden_size": 4096,
                                      "num_attention_heads": 32, "num_key_value_heads": 8},
                                     "too big for this server"),
    "config.json is a list": ([LLAMA], "holds list"),
    "config.json is not JSON": ("{not json", "config.json is not valid JSON"),
    "config.json nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, "config.json is not valid JSON"),
    "config.json of 5 MB": (json.dumps({**LLAMA, "pad": "x" * 5_000_000}), "over the 1,000,000 accepted"),
}


@pytest.mark.parametrize("case", list(REFUSED_CONFIGS))
def test_a_hostile_config_is_refused_before_anything_is_allocated(hf_cache, tmp_path, case):
    config, says = REFUSED_CONFIGS[case]
    repo = "hostile/" + re.sub("-+", "-", "".join(c if c.isalnum() else "-" for c in case))[:60].strip("-")
    in_cache(hf_cache, repo, config_only(config))
    err = bounded(case, lambda: load_model(repo, device="cpu"))
    assert isinstance(err, ValueError) and not isinstance(err, ConnectionError), repr(err)
    named(err, repo, tmp_path, says)


def test_too_big_says_how_many_parameters_and_gigabytes(hf_cache, tmp_path):
    repo = "hostile/big-llama"
    in_cache(hf_cache, repo, config_only({**LLAMA, "vocab_size": 128_256, "hidden_size": 2048,
                                          "intermediate_size": 8192, "num_hidden_layers": 16,
                                          "num_attention_heads": 32, "num_key_value_heads": 8}))
    err = bounded("a 1.5B Llama over a 2 GB budget", lambda: load_model(repo, device="cpu"))
    assert isinstance(err, TooBig)
    named(err, repo, tmp_path, "too big for this server", "parameters need", "GB", "memory budget of 2.0 GB")


def test_a_huge_context_is_survived_with_position_tables_sized_to_what_is_used(hf_cache, tmp_path):
    """max_position_embeddings 4,194,304 on a RoPE model: its cos/sin tables would take 2.1 GB; the model loads
    with tables for MAX_COMPUTED_CONTEXT positions and reads a text as before."""
    from core.config import MAX_COMPUTED_CONTEXT

    def huge_context(folder):
        made = llama(folder)
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4_194_304}))
        return made

    in_cache(hf_cache, "hostile/huge-context", huge_context)
    model = bounded("RoPE with 4,194,304 positions", lambda: load_model("hostile/huge-context", device="cpu"))
    assert model.config.n_ctx == MAX_COMPUTED_CONTEXT
    assert model.rotary.cos.shape[0] == MAX_COMPUTED_CONTEXT and model.rotary.cos.numel() * 8 < 20_000_000
    assert torch.isfinite(trace(model, "The dog ran home.").logits).all()


def test_lying_weight_files_and_indexes_are_refused_before_reading(hf_cache, tmp_path):
    def sharded(shards):
        def build(folder):
            (folder / "config.json").write_text(json.dumps(LLAMA))
            (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": shards}))
        return build

    in_cache(hf_cache, "hostile/escaping-shard", sharded({"x": "../../../../etc/passwd.safetensors"}))
    err = bounded("a shard named ../../etc/passwd", lambda: load_model("hostile/escaping-shard", device="cpu"))
    named(err, "hostile/escaping-shard", tmp_path, "not a .safetensors file beside it")

    in_cache(hf_cache, "hostile/5000-shards", sharded({f"t{i}": f"model-{i}.safetensors" for i in range(5000)}))
    err = bounded("an index of 5,000 shards", lambda: load_model("hostile/5000-shards", device="cpu"))
    named(err, "hostile/5000-shards", tmp_path, "5000 weight files")

    def oversized(folder):
        gpt2(folder)
        with open(folder / "model.safetensors", "r+b") as f:
            f.truncate(300_000_000)  # sparse: 300 MB on paper for a 0.1M-parameter config
    in_cache(hf_cache, "hostile/oversized-weights", oversized)
    err = bounded("300 MB of weights for a 0.1M config", lambda: load_model("hostile/oversized-weights", "cpu"))
    named(err, "hostile/oversized-weights", tmp_path, "far more than")

    def huge_shape(folder):
        (folder / "config.json").write_text(json.dumps(GPT2))
        header = json.dumps({"wte.weight": {"dtype": "F32", "shape": [1_000_000, 1_000_000],
                                            "data_offsets": [0, 16]}}).encode()
        (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 16)
    in_cache(hf_cache, "hostile/huge-shape", huge_shape)
    err = bounded("a header claiming a 4 TB tensor", lambda: load_model("hostile/huge-shape", device="cpu"))
    named(err, "hostile/huge-shape", tmp_path, "model.safetensors", "does not fit the file")


# ---------- chat templates ----------

TEMPLATE_ATTACKS = {  # case: (template, what the refusal says)
    "9 ** 40000000": ("{{ (9 ** 40000000) > 1 }}", "a number of about"),
    "'x' * 3000000000": ("{{ 'x' * 3000000000 }}", "repeats a str"),
    "nested range(100000) loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                                   "ran for more than"),
    "a list multiplied": ("{{ [1, 2] * 2000000000 }}", "repeats a list"),
    "a product of huge numbers": ("{% set n = 2 ** 4000 %}{{ n * n * n }}", "more than 4,096 bits"),
    "center(3000000000)": ("{{ 'x' | center(3000000000) }}", "MB of memory"),
    "a 3 GB %-format width": ("{{ '%3000000000d' % 1 }}", "MB of memory"),
    "str.ljust via a method": ("{{ 'x'.ljust(3000000000) }}", "MB of memory"),
    "output flood": ("{% for i in range(100000) %}{{ 'abcdefghij' }}{% endfor %}", "output grows past"),
    "doubling in a loop": ("{% set s = namespace(v='x') %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}"
                           "{% endfor %}{{ s.v | length }}", ""),
    "an attribute escape": ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
    "a syntax error": ("{% for %}", "TemplateSyntaxError"),
    "an empty template": ("   ", "chat template is empty"),
}


@pytest.mark.parametrize("case", list(TEMPLATE_ATTACKS))
def test_a_hostile_chat_template_is_refused_within_limits(hf_cache, tmp_path, case):
    template, says = TEMPLATE_ATTACKS[case]
    repo = "hostile/template"
    in_cache(hf_cache, repo, llama)
    err = bounded(f"template: {case}", lambda: render_chat(template, MESSAGES, name=repo))
    assert isinstance(err, TemplateRefused), repr(err)
    named(err, repo, tmp_path, says)


def test_a_refused_template_is_remembered_and_its_repo_still_loads(hf_cache, tmp_path):
    """The first render costs its time limit; every later visit is refused at once (cached per template, so per
    repo revision). The repo itself loads: only its template is refused."""
    slow = "{% for i in range(100000) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"

    def with_template(folder):
        made = llama(folder)
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": slow}))
        return made

    in_cache(hf_cache, "hostile/slow-template", with_template)
    model = load_model("hostile/slow-template", device="cpu")
    assert model.tokenizer.chat_template == slow
    first = time.perf_counter()
    with pytest.raises(TemplateRefused, match="ran for more than"):
        render_chat(model.tokenizer.chat_template, MESSAGES, name="hostile/slow-template")
    first = time.perf_counter() - first
    again = time.perf_counter()
    with pytest.raises(TemplateRefused, match="refused before"):
        render_chat(model.tokenizer.chat_template, [{"role": "user", "content": "other"}], name="x/y")
    assert time.perf_counter() - again < 0.05 < first


def test_a_hostile_template_does_not_stall_another_learner(hf_cache):
    """The template runs in a child process: while it computes, another learner's work in this process goes on at
    its usual pace (measured against the same work just before, on this shared machine)."""
    from tests.conftest import tiny

    model = tiny("tiny-llama")
    trace(model, list(range(30)))

    def work() -> float:
        start = time.perf_counter()
        for _ in range(3):
            trace(model, list(range(30)))
        return time.perf_counter() - start

    alone = work()
    attack = "{% for i in range(100000) %}{% for j in range(99998) %}{% endfor %}{% endfor %}"
    worker = threading.Thread(target=lambda: pytest.raises(TemplateRefused, render_chat, attack, MESSAGES))
    worker.start()
    time.sleep(0.3)  # the child is computing
    during = work()
    assert worker.is_alive(), "the attack should still be running"
    print(f"3 traces alone {alone:.2f} s, during a hostile template {during:.2f} s")
    assert during < 3 * alone + 0.5
    worker.join()


def test_ordinary_templates_render_and_a_template_may_stop_on_bad_input(hf_cache):
    template = ("{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
                "<|{{ m.role }}|>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}")
    assert render_chat(template, MESSAGES) == "<|user|>Hello\n<|assistant|>"
    with pytest.raises(TemplateRefused, match="no system role"):
        render_chat(template, [{"role": "system", "content": "x"}])
    assert render_chat(template, MESSAGES) == "<|user|>Hello\n<|assistant|>", "stopping on input is no refusal"


def test_an_empty_or_odd_chat_template_is_no_template(hf_cache):
    for value in ("", "  \n", ["a", "list"], {"default": "{{ x }}"}, 42):
        def with_template(folder, value=value):
            made = llama(folder)
            (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": value}))
            return made

        repo = f"odd/template-{type(value).__name__}-{len(str(value))}"
        in_cache(hf_cache, repo, with_template)
        assert load_model(repo, device="cpu").tokenizer.chat_template is None, value


# ---------- tokenizers ----------

def regex_tokenizer(pattern: str):
    """A byte-level BPE whose pre-tokenizer first splits on `pattern` (tokenizers' Onig regex engine)."""
    from tokenizers import Regex, pre_tokenizers

    from tests.test_hub import byte_level_bpe

    tok = byte_level_bpe(320)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    return tok


def gpt2_with(tokenizer_json: bytes | str | None = None, tokenizer=None):
    def build(folder):
        made = gpt2(folder)
        if tokenizer is not None:
            tokenizer.save(str(folder / "tokenizer.json"))
        if tokenizer_json is not None:
            data = tokenizer_json.encode() if isinstance(tokenizer_json, str) else tokenizer_json
            (folder / "tokenizer.json").write_bytes(data)
        return made

    return build


def test_tokenizers_really_panics_on_a_catastrophic_regex():
    """The premise: tokenizers' regex engine gives up on (a+)+$ over a long run of a's, and the Rust panic reaches
    Python as a BaseException that `except Exception` does not catch."""
    tok = regex_tokenizer("(a+)+$")
    with pytest.raises(BaseException) as caught:
        tok.encode("a" * 40 + "b")
    assert type(caught.value).__name__ == "PanicException" and not isinstance(caught.value, Exception)


def test_a_panicking_tokenizer_is_refused_when_loaded_naming_the_repo(hf_cache, tmp_path):
    in_cache(hf_cache, "hostile/panic", gpt2_with(tokenizer=regex_tokenizer("(a+)+$")))
    err = bounded("pre-tokenizer (a+)+$", lambda: load_model("hostile/panic", device="cpu"))
    assert isinstance(err, TokenizerFailed)
    named(err, "hostile/panic", tmp_path, "tokenizer.json")


def test_a_tokenizer_that_panics_later_fails_by_name_on_that_text(hf_cache, tmp_path):
    """(b+)+$ passes the load-time probe; the text that makes it panic gives TokenizerFailed, and the tokenizer
    keeps working on other texts."""
    in_cache(hf_cache, "hostile/late-panic", gpt2_with(tokenizer=regex_tokenizer("(b+)+$")))
    model = load_model("hostile/late-panic", device="cpu")
    err = bounded("pre-tokenizer (b+)+$ on b×40", lambda: trace(model, "b" * 40 + "c"))
    assert isinstance(err, TokenizerFailed)
    named(err, "hostile/late-panic", tmp_path, "tokenizer")
    for call in (model.tokenizer.encode, model.tokenizer.pieces, model.tokenizer.char_spans,
                 model.tokenizer.encode_with_special, model.tokenizer.encode_fragment):
        with pytest.raises(TokenizerFailed):
            call("b" * 40 + "c")
    assert model.tokenizer.encode("Once upon a time")


@pytest.mark.parametrize("case", ["not JSON", "JSON of the wrong shape", "a Unigram model", "300 MB",
                                  "more tokens than the model has"])
def test_a_bad_tokenizer_json_gives_a_named_message(hf_cache, tmp_path, case):
    from tokenizers import Tokenizer, models

    if case == "not JSON":
        build = gpt2_with('{"version": "1.0", "model": {"type": "BPE", "vocab": {')
    elif case == "JSON of the wrong shape":
        build = gpt2_with(json.dumps({"model": 5}))
    elif case == "a Unigram model":
        build = gpt2_with(tokenizer=Tokenizer(models.Unigram([("a", -1.0), ("b", -2.0)], 0, False)))
    elif case == "more tokens than the model has":
        from tests.test_hub import byte_level_bpe
        build = gpt2_with(tokenizer=byte_level_bpe(400))  # the model has 320 rows of embeddings
    else:
        def build(folder):
            made = gpt2(folder)
            with open(folder / "tokenizer.json", "r+b") as f:
                f.truncate(300_000_000)
            return made
    repo = "hostile/tokenizer-" + case.replace(" ", "-")
    in_cache(hf_cache, repo, build)
    err = bounded(f"tokenizer.json: {case}", lambda: load_model(repo, device="cpu"))
    assert isinstance(err, ValueError) and type(err) is not Exception, repr(err)
    named(err, repo, tmp_path, "tokenizer")


def test_every_learner_facing_load_error_names_the_repo_not_the_cache(hf_cache, tmp_path):
    """A repo whose weights are damaged: the message names org/name/model.safetensors."""
    def damaged(folder):
        made = gpt2(folder)
        data = bytearray((folder / "model.safetensors").read_bytes())
        (folder / "model.safetensors").write_bytes(bytes(data[:len(data) // 2]))
        return made

    in_cache(hf_cache, "hostile/cut-weights", damaged)
    with pytest.raises(ValueError) as caught:
        load_model("hostile/cut-weights", device="cpu")
    named(caught.value, "hostile/cut-weights", tmp_path, "hostile/cut-weights/model.safetensors")
    assert COMMIT not in str(caught.value)


def test_hub_cached_and_a_repo_in_the_cache(hf_cache):
    in_cache(hf_cache, "someone/tiny-gpt2", gpt2)
    assert hub.cached("someone/tiny-gpt2") and not hub.cached("someone/absent")


def test_embedding_rows_without_a_token_are_shown_not_crashed_on(hf_cache):
    """Repos pad their embedding table past their vocabulary; a sampled padding row has no text."""
    in_cache(hf_cache, "someone/padded", llama)
    model = load_model("someone/padded", device="cpu")
    tok = model.tokenizer
    unused = next(i for i in range(model.config.vocab_size) if i not in tok._strings)
    assert tok.display(unused) == f"⟨unused id {unused}⟩" and tok.token_bytes(unused) == b""
    from core import generate

    out = generate(model, [unused, 5], max_new_tokens=3, temperature=1.0, seed=0)
    assert len(out.steps) == 3 and all(isinstance(s.token, str) for s in out.steps)
