"""Weight loading: parity with transformers on checkpoints the tests create, the registry's GPT-2 through a
Hub-like local server, the offline error, and refusing unsafe or damaged files."""

import http.server
import pickle
import threading

import pytest
import torch

from core import generate, load_model, trace
from core.loading.weights import GPT2_IGNORED, GPT2_MAP, GPT2_TRANSPOSED, assign

transformers = pytest.importorskip("transformers")


def save_gpt2(path, **config):
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(**config)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(path)
    return model


def max_logit_error(hf_model, ours, ids):
    with torch.no_grad():
        ref = hf_model(torch.tensor([ids])).logits[0]
    got = trace(ours, ids, record=(), logits="all").all_logits
    return (ref - got).abs().max().item()


@pytest.mark.parametrize(
    "config",
    [
        dict(n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128),  # small for test speed
        pytest.param(dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),  # GPT-2 small's shape
                     marks=pytest.mark.slow),
    ],
    ids=["small", "gpt2-small-shape"],
)
def test_gpt2_parity(tmp_path, config):
    hf = save_gpt2(tmp_path, attn_implementation="eager", **config)
    ours = load_model(tmp_path, device="cpu")
    ids = torch.randint(0, config["vocab_size"], (64,), generator=torch.Generator().manual_seed(0)).tolist()
    assert max_logit_error(hf, ours, ids) <= 1e-4
    assert ours.tokenizer is None  # a bare checkpoint folder has no tokenizer
    if config["n_layer"] == 2:
        hf_ids = hf.generate(torch.tensor([ids[:8]]), max_new_tokens=20, do_sample=False, pad_token_id=0)
        assert generate(ours, ids[:8], max_new_tokens=20, temperature=0).new_ids == hf_ids[0, 8:].tolist()


def test_llama_parity_gqa_rope_tied(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True, rms_norm_eps=1e-6,
        attn_implementation="eager",
    )
    hf = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # random norms, so that a mix-up of norm weights cannot hide
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path, device="cpu")
    assert ours.config.kv_heads == 2 and ours.config.positional == "rope" and ours.unembed is None
    ids = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(0)).tolist()
    assert max_logit_error(hf, ours, ids) <= 1e-4
    hf_ids = hf.generate(torch.tensor([ids[:8]]), max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert generate(ours, ids[:8], max_new_tokens=20, temperature=0).new_ids == hf_ids[0, 8:].tolist()


def test_assign_refuses_mismatches(tmp_path):
    save_gpt2(tmp_path, n_layer=1, n_embd=32, n_head=4, vocab_size=100, n_positions=16)
    good = load_model(tmp_path, device="cpu")
    from safetensors.torch import load_file

    ckpt = {k.removeprefix("transformer."): v for k, v in load_file(tmp_path / "model.safetensors").items()}
    with pytest.raises(KeyError, match="no place"):
        assign(good, {**ckpt, "h.0.extra.weight": torch.zeros(1)}, GPT2_MAP, GPT2_TRANSPOSED, GPT2_IGNORED)
    with pytest.raises(ValueError, match="shape mismatch"):
        assign(good, {**ckpt, "wpe.weight": torch.zeros(17, 32)}, GPT2_MAP, GPT2_TRANSPOSED, GPT2_IGNORED)
    with pytest.raises(KeyError, match="lacks"):
        assign(good, {k: v for k, v in ckpt.items() if k != "ln_f.bias"}, GPT2_MAP, GPT2_TRANSPOSED, GPT2_IGNORED)


def test_registry_gpt2_from_a_hub_like_server(tmp_path, monkeypatch):
    """The registry's gpt2 entry: weights through huggingface_hub (a local server answering like the Hub), the
    shipped tiktoken vocabulary as its tokenizer, then the standard cache with the Hub switched off."""
    from tests.test_hub import HubLike

    served = tmp_path / "served"
    hf = save_gpt2(served / "openai-community" / "gpt2", n_layer=1, n_embd=32, n_head=4, vocab_size=50257,
                   n_positions=64)
    handler = type("H", (HubLike,), {"root": served, "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        seen = []
        model = load_model("gpt2", device="cpu", progress=lambda frac, msg: seen.append(frac))
    finally:
        server.shutdown()
    assert seen and seen[-1] == 1.0 and model.config.name == "gpt2"
    assert model.tokenizer.encode("Hello world") == [15496, 995]
    ids = model.tokenizer.encode("Hello world, this is a test")
    assert max_logit_error(hf, model, ids) <= 1e-4
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # second load: from the cache, no server needed
    assert load_model("gpt2", device="cpu").config.d_model == 32


def test_offline_hub_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConnectionError, match="distilgpt2.*cannot be reached.*offline"):
        load_model("distilgpt2")


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        load_model("../../etc/passwd")


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_gpt2(tmp_path / "m", n_layer=1, n_embd=32, n_head=4, vocab_size=100, n_positions=16)
    (tmp_path / "m" / "model.safetensors").unlink()
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(pickle.dumps({"wte.weight": Evil()}))
    with pytest.raises(ValueError, match="could not be read safely"):
        load_model(tmp_path / "m", device="cpu")
    assert not (tmp_path / "pwned").exists()


def test_truncated_safetensors_is_refused(tmp_path):
    save_gpt2(tmp_path, n_layer=1, n_embd=32, n_head=4, vocab_size=100, n_positions=16)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_model(tmp_path, device="cpu")


def test_own_safetensors_reader_matches_the_library_and_refuses_bad_offsets(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from core.loading.weights import read_safetensors

    tensors = {"f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 2).bfloat16(),
               "empty": torch.empty(0, 3), "i64": torch.arange(7), "scalar": torch.tensor(3.0)}
    save_file(tensors, tmp_path / "a.safetensors", metadata={"format": "pt"})
    ours, ref = read_safetensors(tmp_path / "a.safetensors"), load_file(tmp_path / "a.safetensors")
    assert ours.keys() == ref.keys()
    for k in ref:
        assert ours[k].dtype == ref[k].dtype and torch.equal(ours[k], ref[k])
    data = (tmp_path / "a.safetensors").read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    header["f32"]["data_offsets"][1] += 10**6  # points past the end of the file
    bad = json.dumps(header).encode()
    (tmp_path / "b.safetensors").write_bytes(len(bad).to_bytes(8, "little") + bad + data[8 + n :])
    with pytest.raises(ValueError, match="not a valid safetensors"):
        read_safetensors(tmp_path / "b.safetensors")
    (tmp_path / "c.safetensors").write_bytes((10**12).to_bytes(8, "little") + data[8:])  # absurd header length
    with pytest.raises(ValueError, match="not a valid safetensors"):
        read_safetensors(tmp_path / "c.safetensors")
