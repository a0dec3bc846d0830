"""Any Hub repo id through huggingface_hub, tested offline. The tests build a Hugging Face cache in the
standard layout (models--org--name/snapshots/<rev>/, refs/main) with small random transformers models and
tokenizers they train, load them by repo id with the Hub unreachable, and compare with transformers; a local
server that answers like the Hub checks the real download path (progress, then the cache)."""

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

from core import load_model, trace
from core.loading import hub
from core.loading.registry import get

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TEXTS = ["Once upon a time there was a little cat.", "The dog ran home to eat, and then it slept.",
         "Café, naïve, 2024 — ünïcödé!"] * 30
COMMIT = "a" * 40


def byte_level_bpe(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return tok


def sentencepiece_bpe(vocab_size: int):
    from tokenizers import SentencePieceBPETokenizer

    tok = SentencePieceBPETokenizer()
    tok.train_from_iterator(TEXTS, vocab_size=vocab_size, show_progress=False)
    return tok


def wordpiece(vocab_size: int):
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(lowercase=True)
    tok.train_from_iterator(TEXTS, vocab_size=vocab_size, show_progress=False)
    return tok


def gpt2(folder: Path):
    torch.manual_seed(0)
    tok = byte_level_bpe(320)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=320, n_positions=64, n_embd=32, n_layer=2, n_head=4, attn_implementation="eager")).eval()
    model.save_pretrained(folder)
    tok.save(str(folder / "tokenizer.json"))
    return model, tok


def llama(folder: Path):
    torch.manual_seed(0)
    tok = sentencepiece_bpe(300)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False,
        attn_implementation="eager")).eval()
    model.save_pretrained(folder)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages[0]['content'] }}"}))
    return model, tok


def bert(folder: Path):
    torch.manual_seed(0)
    tok = wordpiece(200)
    model = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=64, attn_implementation="eager")).eval()
    model.save_pretrained(folder)
    tok.save(str(folder / "tokenizer.json"))
    return model, tok


def in_cache(root: Path, repo_id: str, build):
    """One repo in the standard Hugging Face cache layout; returns what `build` made."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    made = build(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return made


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    root = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the Hub is unreachable
    return root


@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "unreachable"])
def test_gpt2_family_repo_from_the_cache_with_its_own_tokenizer(hf_cache, monkeypatch, offline):
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf, tok = in_cache(hf_cache, "someone/tiny-gpt2", gpt2)
    ours = load_model("someone/tiny-gpt2", device="cpu")
    assert ours.config.name == "someone/tiny-gpt2" and ours.tokenizer.kind == "bpe"
    text = "Once upon a time, a naïve cat ran home."
    ids = ours.tokenizer.encode(text)
    assert ids == tok.encode(text).ids
    assert b"".join(ours.tokenizer.token_bytes(i) for i in ids) == text.encode()
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    assert (trace(ours, ids, record=(), logits="all").all_logits - ref).abs().max() < 1e-4


def test_llama_repo_untied_gqa_with_a_sentencepiece_tokenizer(hf_cache):
    hf, tok = in_cache(hf_cache, "someone/tiny-llama", llama)
    ours = load_model("someone/tiny-llama", device="cpu")
    assert ours.unembed is not None and ours.config.kv_heads == 2 and ours.tokenizer.kind == "metaspace"
    text = "The dog ran home to eat."
    ids = ours.tokenizer.encode(text)
    assert ids == tok.encode(text).ids
    assert b"".join(ours.tokenizer.token_bytes(i) for i in ids).strip() == text.encode()
    assert ours.tokenizer.chat_template == "{{ messages[0]['content'] }}"
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    assert (trace(ours, ids, record=(), logits="all").all_logits - ref).abs().max() < 1e-4


def test_bert_masked_lm_repo_loads_as_an_encoder(hf_cache):
    hf, tok = in_cache(hf_cache, "someone/tiny-bert", bert)
    ours = load_model("someone/tiny-bert", device="cpu")
    assert not ours.config.lm_head and ours.tokenizer.kind == "wordpiece"
    ids = ours.tokenizer.encode("the dog ran home")
    assert ids == tok.encode("the dog ran home").ids
    with torch.no_grad():
        ref = hf.bert(torch.tensor([ids])).last_hidden_state[0]
    got = trace(ours, ids, record=("blocks.1.hook_resid_post",)).resid_post(1)
    assert (got - ref).abs().max() < 1e-4


def test_another_architecture_is_not_supported_yet_before_any_download(hf_cache):
    def mistral(folder):
        (folder / "config.json").write_text(json.dumps({"model_type": "mistral",
                                                        "architectures": ["MistralForCausalLM"]}))

    in_cache(hf_cache, "someone/tiny-mistral", mistral)
    with pytest.raises(ValueError, match="not supported yet: MistralForCausalLM"):
        load_model("someone/tiny-mistral")


def test_missing_repo_offline_says_so(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="HF_HUB_OFFLINE"):
        load_model("someone/not-there")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ConnectionError, match="cannot be reached"):
        load_model("someone/not-there")


def test_repo_ids_and_registry():
    assert hub.is_repo_id("HuggingFaceTB/SmolLM2-360M") and hub.is_repo_id("gpt2/x")
    for bad in ("../etc/passwd", "a/b/c", "https://huggingface.co/gpt2", "a/..", "/abs", "x"):
        assert not hub.is_repo_id(bad), bad
    assert get("TinyLlama/TinyLlama-1.1B-Chat-v1.0").source == "hub"
    with pytest.raises(ValueError):
        get("not a repo")


class HubLike(http.server.BaseHTTPRequestHandler):
    """Answers /{org}/{name}/resolve/{revision}/{file} as the Hub does: ETag and X-Repo-Commit on HEAD, 404 with
    X-Error-Code: EntryNotFound for a missing file."""

    root: Path
    requests: list

    def log_message(self, *args):
        pass

    def _file(self) -> Path | None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return None
        file = self.root / parts[0] / parts[1] / "/".join(parts[4:])
        return file if file.is_file() else None

    def _headers(self, file: Path | None) -> None:
        if file is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", '"' + hashlib.sha256(file.read_bytes()).hexdigest() + '"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Length", str(file.stat().st_size))
        self.end_headers()

    def do_HEAD(self):
        self.requests.append(("HEAD", self.path))
        self._headers(self._file())

    def do_GET(self):
        self.requests.append(("GET", self.path))
        file = self._file()
        self._headers(file)
        if file is not None:
            self.wfile.write(file.read_bytes())


def test_download_from_a_hub_like_server_then_offline(tmp_path, monkeypatch):
    """The real huggingface_hub download (HF_ENDPOINT pointed at a local server holding files the test made), with
    the sidebar's progress callback; the second load reads the standard cache with the Hub switched off."""
    served = tmp_path / "served"
    hf, _ = gpt2(_mk(served / "someone" / "tiny-gpt2"))
    handler = type("H", (HubLike,), {"root": served, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    seen = []
    try:
        model = load_model("someone/tiny-gpt2", device="cpu", progress=lambda frac, msg: seen.append((frac, msg)))
    finally:
        server.shutdown()
    assert seen[-1][0] == 1.0 and any("downloading model.safetensors" in m and f > 0 for f, m in seen)
    assert any(path.endswith("/model.safetensors") for _, path in handler.requests)
    assert not any(path.endswith(".bin") for _, path in handler.requests), "no pickle is ever fetched"
    snapshot = tmp_path / "hf-cache" / "models--someone--tiny-gpt2" / "snapshots"
    assert snapshot.is_dir(), "files land in the standard Hugging Face cache layout"
    ids = model.tokenizer.encode("Once upon a time")
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0, -1]
    assert (trace(model, ids).logits - ref).abs().max() < 1e-4
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_model("someone/tiny-gpt2", device="cpu").config.d_model == 32


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder
