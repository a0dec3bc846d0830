"""The same models on Community Cloud: where the smollm2/minilm pip packages are not installed (Cloud installs
requirements.txt only, and these packages need --no-deps), the registry offers smollm2-135m and minilm-l6 from
their own Hub repos through huggingface_hub's cache. Tested offline: a Hugging Face cache in the standard layout
is built from the packaged files (SmolLM2's conversion written back in the Hub repo's Llama naming, MiniLM's files
as they are), and a local server that answers like the Hub serves them for the download path. Parity ≤ 1e-4 with
the packaged load, the same token ids and the same chat prompt."""

import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import core.loading.registry as registry
from core import load_model, trace
from core.loading.packaged import MINILM, SMOLLM2, package_dir
from core.loading.weights import LLAMA_MAP
from core.tokenizer import render_chat
from tests.test_hub import HubLike, in_cache

SMOLLM2_REPO, MINILM_REPO = "HuggingFaceTB/SmolLM2-135M-Instruct", "sentence-transformers/all-MiniLM-L6-v2"
TEXT = "The capital of France is Paris, and the bank of the river flooded in 2024."

needs_packages = pytest.mark.skipif(
    not all(registry._installed(m) for m in (SMOLLM2[0], MINILM[0])),
    reason="the packaged models are the reference: install requirements-models.txt")


def hf_llama_state(model) -> dict[str, torch.Tensor]:
    """Our Llama-layout weights in the Hub's naming (LLAMA_MAP read backwards, q·k·v split again)."""
    cfg, state, out = model.config, model.state_dict(), {}
    q, kv = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    for ours_template, sources in LLAMA_MAP.items():
        for i in range(cfg.n_layers) if "{i}" in ours_template else [None]:
            ours = ours_template.format(i=i)
            if ours not in state or (ours == "unembed.weight" and cfg.tied_embeddings):
                continue
            parts = state[ours].split([q, kv, kv]) if len(sources) == 3 else [state[ours]]
            for source, part in zip(sources, parts):
                out[source.format(i=i)] = part.contiguous().clone()
    return out


def smollm2_repo(model):
    def build(folder: Path):
        cfg = model.config
        (folder / "config.json").write_text(json.dumps({
            "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.d_model, "intermediate_size": cfg.mlp_dim, "num_hidden_layers": cfg.n_layers,
            "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.kv_heads, "head_dim": cfg.head_dim,
            "max_position_embeddings": cfg.n_ctx, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "tie_word_embeddings": cfg.tied_embeddings, "rope_scaling": None, "hidden_act": "silu"}))
        save_file(hf_llama_state(model), folder / "model.safetensors")
        model.tokenizer.backend.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": model.tokenizer.chat_template}))

    return build


def minilm_repo(folder: Path):
    source = package_dir(MINILM[0]) / MINILM[1]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, folder / name)


@pytest.fixture(scope="module")
def packaged_models():
    return load_model("smollm2-135m", "cpu"), load_model("minilm-l6", "cpu")


@pytest.fixture
def without_packages(tmp_path, monkeypatch):
    """This process as on Community Cloud: the two packages not installed; an empty HF cache in tmp_path."""
    monkeypatch.setattr(registry, "_installed", lambda module: module not in (SMOLLM2[0], MINILM[0]))
    registry._hub_usable.cache_clear()
    root = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    yield root
    registry._hub_usable.cache_clear()


@needs_packages
def test_from_the_hub_cache_with_parity_to_the_packaged_load(packaged_models, without_packages, monkeypatch):
    smollm, minilm = packaged_models
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    in_cache(without_packages, SMOLLM2_REPO, smollm2_repo(smollm))
    in_cache(without_packages, MINILM_REPO, minilm_repo)
    assert {"smollm2-135m", "minilm-l6"} <= set(registry.names())
    for name in ("smollm2-135m", "minilm-l6"):
        entry = registry.get(name)
        assert entry.from_hub and "Hugging Face Hub" in entry.label
    assert registry.find(encoder=True).name == "minilm-l6", "the encoder to set beside a decoder is there"

    hub_smollm = load_model("smollm2-135m", "cpu")
    assert hub_smollm.config.name == "smollm2-135m" and hub_smollm.tokenizer.name == "smollm2-135m"
    ids = smollm.tokenizer.encode(TEXT)
    assert hub_smollm.tokenizer.encode(TEXT) == ids
    got, ref = trace(hub_smollm, ids, record=(), logits="all"), trace(smollm, ids, record=(), logits="all")
    assert (got.all_logits - ref.all_logits).abs().max() <= 1e-4
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    assert render_chat(hub_smollm.tokenizer.chat_template, chat) == render_chat(smollm.tokenizer.chat_template, chat)

    hub_minilm = load_model("minilm-l6", "cpu")
    assert hub_minilm.config.name == "minilm-l6" and not hub_minilm.config.lm_head
    ids = minilm.tokenizer.encode(TEXT)
    assert hub_minilm.tokenizer.encode(TEXT) == ids
    last = f"blocks.{minilm.config.n_layers - 1}.hook_resid_post"
    got, ref = trace(hub_minilm, ids, record=(last,))[last], trace(minilm, ids, record=(last,))[last]
    assert (got - ref).abs().max() <= 1e-4


@needs_packages
def test_downloaded_from_a_hub_like_server_then_offered(packaged_models, without_packages, tmp_path, monkeypatch):
    """An empty cache and a reachable Hub (a local server with MiniLM's files): offered, downloaded with progress,
    loaded with parity; afterwards in the standard cache."""
    served = tmp_path / "served"
    minilm_repo(_mk(served / MINILM_REPO))
    handler = type("H", (HubLike,), {"root": served, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    seen = []
    try:
        assert "minilm-l6" in registry.names()
        entry = registry.get("minilm-l6")
        entry.fetch(lambda frac, message: seen.append((frac, message)))
        model = entry.load("cpu")
    finally:
        server.shutdown()
    assert seen and seen[-1][0] == 1.0
    assert (without_packages / ("models--" + MINILM_REPO.replace("/", "--")) / "snapshots").is_dir()
    ids = packaged_models[1].tokenizer.encode(TEXT)
    last = f"blocks.{model.config.n_layers - 1}.hook_resid_post"
    assert (trace(model, ids, record=(last,))[last] - trace(packaged_models[1], ids, record=(last,))[last]
            ).abs().max() <= 1e-4


def test_not_offered_without_packages_cache_or_hub(without_packages, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    names = registry.names()
    assert "smollm2-135m" not in names and "minilm-l6" not in names
    assert registry.find(encoder=True) is None or registry.find(encoder=True).name != "minilm-l6"


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder
