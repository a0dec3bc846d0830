"""Checkpoint formats and I/O: our own format, HF GPT-2, Llama and BERT checkpoints, safetensors (Hub downloads:
core.loading.hub).

Which models exist and how each is fetched is core.loading.registry's business; this module only reads and writes files.

One function (`assign`) copies a checkpoint into the model through an explicit name-mapping table, with a list of
names that the HF checkpoint stores transposed, and raises on any shape mismatch, any parameter left without a
source and any checkpoint key left unmapped. Only safetensors or `torch.load(weights_only=True)` is ever read.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.config import MAX_COMPUTED_CONTEXT, ModelConfig
from core.loading.integrity import DamagedFile, check_asset
from core.model import Rotary, SinusoidalPositions, Transformer
from core.seq2seq import EncoderDecoder
from core.tokenizer import Tokenizer, WordTokenizer, from_rank_file

Progress = Callable[[float, str], None]

# our name → checkpoint names (several are concatenated along dim 0). "{i}" is the block index.
GPT2_MAP = {
    "embed.weight": ["wte.weight"],
    "pos_embed.weight": ["wpe.weight"],
    "blocks.{i}.ln1.weight": ["h.{i}.ln_1.weight"],
    "blocks.{i}.ln1.bias": ["h.{i}.ln_1.bias"],
    "blocks.{i}.attn.qkv.weight": ["h.{i}.attn.c_attn.weight"],
    "blocks.{i}.attn.qkv.bias": ["h.{i}.attn.c_attn.bias"],
    "blocks.{i}.attn.out.weight": ["h.{i}.attn.c_proj.weight"],
    "blocks.{i}.attn.out.bias": ["h.{i}.attn.c_proj.bias"],
    "blocks.{i}.ln2.weight": ["h.{i}.ln_2.weight"],
    "blocks.{i}.ln2.bias": ["h.{i}.ln_2.bias"],
    "blocks.{i}.mlp.fc_in.weight": ["h.{i}.mlp.c_fc.weight"],
    "blocks.{i}.mlp.fc_in.bias": ["h.{i}.mlp.c_fc.bias"],
    "blocks.{i}.mlp.fc_out.weight": ["h.{i}.mlp.c_proj.weight"],
    "blocks.{i}.mlp.fc_out.bias": ["h.{i}.mlp.c_proj.bias"],
    "ln_final.weight": ["ln_f.weight"],
    "ln_final.bias": ["ln_f.bias"],
}
# GPT-2 stores these as Conv1D weights, (in, out): transpose to nn.Linear's (out, in).
GPT2_TRANSPOSED = re.compile(r"h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight")
# Buffers old GPT-2 checkpoints carry (the causal mask), and the tied head.
GPT2_IGNORED = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)|lm_head\.weight")

LLAMA_MAP = {
    "embed.weight": ["model.embed_tokens.weight"],
    "blocks.{i}.ln1.weight": ["model.layers.{i}.input_layernorm.weight"],
    "blocks.{i}.attn.qkv.weight": [
        "model.layers.{i}.self_attn.q_proj.weight",
        "model.layers.{i}.self_attn.k_proj.weight",
        "model.layers.{i}.self_attn.v_proj.weight",
    ],
    "blocks.{i}.attn.out.weight": ["model.layers.{i}.self_attn.o_proj.weight"],
    "blocks.{i}.ln2.weight": ["model.layers.{i}.post_attention_layernorm.weight"],
    "blocks.{i}.mlp.fc_gate.weight": ["model.layers.{i}.mlp.gate_proj.weight"],
    "blocks.{i}.mlp.fc_in.weight": ["model.layers.{i}.mlp.up_proj.weight"],
    "blocks.{i}.mlp.fc_out.weight": ["model.layers.{i}.mlp.down_proj.weight"],
    "ln_final.weight": ["model.norm.weight"],
    "unembed.weight": ["lm_head.weight"],
}
LLAMA_TRANSPOSED = re.compile(r"^$")  # nothing: Llama uses nn.Linear like us
LLAMA_IGNORED = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq|lm_head\.weight")

# BertModel (no "bert." prefix: the checkpoint's prefix is stripped before mapping). Post-LN: BERT's
# attention.output.LayerNorm comes after the attention add (our ln1), output.LayerNorm after the MLP add (ln2).
BERT_MAP = {
    "embed.weight": ["embeddings.word_embeddings.weight"],
    "pos_embed.weight": ["embeddings.position_embeddings.weight"],
    "token_type_embed.weight": ["embeddings.token_type_embeddings.weight"],
    "ln_embed.weight": ["embeddings.LayerNorm.weight"],
    "ln_embed.bias": ["embeddings.LayerNorm.bias"],
    "blocks.{i}.attn.qkv.weight": [
        "encoder.layer.{i}.attention.self.query.weight",
        "encoder.layer.{i}.attention.self.key.weight",
        "encoder.layer.{i}.attention.self.value.weight",
    ],
    "blocks.{i}.attn.qkv.bias": [
        "encoder.layer.{i}.attention.self.query.bias",
        "encoder.layer.{i}.attention.self.key.bias",
        "encoder.layer.{i}.attention.self.value.bias",
    ],
    "blocks.{i}.attn.out.weight": ["encoder.layer.{i}.attention.output.dense.weight"],
    "blocks.{i}.attn.out.bias": ["encoder.layer.{i}.attention.output.dense.bias"],
    "blocks.{i}.ln1.weight": ["encoder.layer.{i}.attention.output.LayerNorm.weight"],
    "blocks.{i}.ln1.bias": ["encoder.layer.{i}.attention.output.LayerNorm.bias"],
    "blocks.{i}.mlp.fc_in.weight": ["encoder.layer.{i}.intermediate.dense.weight"],
    "blocks.{i}.mlp.fc_in.bias": ["encoder.layer.{i}.intermediate.dense.bias"],
    "blocks.{i}.mlp.fc_out.weight": ["encoder.layer.{i}.output.dense.weight"],
    "blocks.{i}.mlp.fc_out.bias": ["encoder.layer.{i}.output.dense.bias"],
    "blocks.{i}.ln2.weight": ["encoder.layer.{i}.output.LayerNorm.weight"],
    "blocks.{i}.ln2.bias": ["encoder.layer.{i}.output.LayerNorm.bias"],
}
BERT_TRANSPOSED = LLAMA_TRANSPOSED
# The position-id buffer, the pooler and a masked-LM checkpoint's prediction head (cls.*, not loaded: no LM head),
# and the pooler (a tanh layer on [CLS] for BERT's next-sentence task; the pages never use it).
BERT_IGNORED = re.compile(r"embeddings\.position_ids|pooler\.dense\.(weight|bias)|cls\..*")

MAPPINGS = {
    "gpt2": (GPT2_MAP, GPT2_TRANSPOSED, GPT2_IGNORED),
    "llama": (LLAMA_MAP, LLAMA_TRANSPOSED, LLAMA_IGNORED),
    "bert": (BERT_MAP, BERT_TRANSPOSED, BERT_IGNORED),
}


def assign(
    model: Transformer,
    checkpoint: dict[str, torch.Tensor],
    mapping: dict[str, list[str]],
    transposed: re.Pattern,
    ignored: re.Pattern,
) -> None:
    """Put `checkpoint` into `model` through `mapping`; raise on any mismatch, unmapped or missing name.

    The model may be an `empty_model` (parameters on the meta device): the loaded tensors replace them. Entries
    are taken out of `checkpoint` as they are used, so a transposed copy never coexists with the whole original
    (GPT-2 small's peak load memory drops by ~300 MB); pass a copy to keep yours."""
    ours = model.state_dict()
    loaded = {}
    for name, param in ours.items():
        template = re.sub(r"^blocks\.\d+\.", "blocks.{i}.", name)
        layer = re.match(r"^blocks\.(\d+)\.", name)
        sources = mapping.get(template)
        if sources is None:
            raise KeyError(f"no checkpoint source for our parameter {name!r}")
        sources = [s.format(i=layer.group(1)) if layer else s for s in sources]
        missing = [s for s in sources if s not in checkpoint]
        if missing:
            raise KeyError(f"checkpoint lacks {missing} (needed for {name!r})")
        parts = []
        for source in sources:
            tensor = checkpoint.pop(source)
            parts.append(tensor.t() if transposed.fullmatch(source) else tensor)
        value = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        if value.shape != param.shape:
            raise ValueError(f"shape mismatch for {name!r}: checkpoint {tuple(value.shape)} vs model {tuple(param.shape)}")
        loaded[name] = value.to(param.dtype).contiguous()
        del parts, value
    unmapped = [k for k in checkpoint if not ignored.fullmatch(k)]
    if unmapped:
        raise KeyError(f"checkpoint keys with no place in the model: {unmapped[:8]}")
    model.load_state_dict(loaded, assign=True)


def empty_model(cfg: ModelConfig) -> Transformer:
    """The architecture with its parameters on the meta device: no time spent on a random initialisation that the
    checkpoint overwrites anyway (3 s for SmolLM2's 135M parameters). Computed buffers are built for real."""
    with torch.device("meta"):
        model = EncoderDecoder(cfg) if cfg.encoder_decoder else Transformer(cfg)
    if cfg.positional == "rope":
        model.rotary = Rotary(cfg)
    if cfg.positional == "sinusoidal":
        model.pos_embed = SinusoidalPositions(cfg)
    return model


SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


MAX_HEADER_BYTES = 100_000_000  # safetensors' own reader refuses larger headers too


def read_safetensors(file: Path) -> dict[str, torch.Tensor]:
    """A safetensors file, each tensor read straight into memory of its own.

    safetensors' `load_file` memory-maps the file: every page a later pass touches stays counted against the
    process for as long as any tensor of the file lives, next to the transposed copies the loader makes (GPT-2
    small held 1,047 MB instead of 736 MB after a forward pass). The format is simple — an 8-byte header length, a
    JSON header of dtype, shape and byte offsets, then the data — so it is read here, with every offset checked."""
    check_asset(file)
    try:
        with open(file, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            n = int.from_bytes(f.read(8), "little")
            if not 2 <= n <= min(size - 8, MAX_HEADER_BYTES):
                raise ValueError("bad header length")
            header = json.loads(f.read(n))
            tensors = {}
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                dtype = SAFETENSORS_DTYPES[info["dtype"]]
                start, end = info["data_offsets"]
                shape = [int(d) for d in info["shape"]]
                nbytes = math.prod(shape) * dtype.itemsize
                # Checked before allocating: a header may claim any shape, the file holds what it holds.
                if min(shape, default=0) < 0 or not 0 <= start <= end <= size - 8 - n or end - start != nbytes:
                    raise ValueError(f"tensor {name!r} does not fit the file")
                tensor = torch.empty(shape, dtype=dtype)
                raw = tensor.view(-1).view(torch.uint8) if tensor.numel() else tensor.view(torch.uint8)
                f.seek(8 + n + start)
                if f.readinto(memoryview(raw.numpy())) != raw.numel():
                    raise ValueError(f"tensor {name!r} is cut short")
                tensors[name] = tensor
            return tensors
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError, RuntimeError) as err:
        raise ValueError(f"{file} is not a valid safetensors file: {err}") from err


SHARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.safetensors")  # a file beside the index, never a path
MAX_SHARDS = 1000
MAX_INDEX_BYTES = 50_000_000  # a real index lists each tensor name once: a few hundred kB for the largest models


def shard_names(index: Path) -> list[str]:
    """The weight files a sharded checkpoint's index names, each checked to be a plain file name beside it."""
    check_asset(index)
    if index.stat().st_size > MAX_INDEX_BYTES:
        raise ValueError(f"{index.name} is {index.stat().st_size:,} bytes: not a weight index")
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{index.name} is not a weight index ({err!r})") from None
    bad = [s for s in shards if not isinstance(s, str) or not SHARD.fullmatch(s)]
    if bad or not 1 <= len(shards) <= MAX_SHARDS:
        raise ValueError(f"{index.name} names {len(shards)} weight files" + (f", among them {str(bad[0])[:60]!r}, "
                         "which is not a .safetensors file beside it" if bad else f" (1 to {MAX_SHARDS} expected)"))
    return shards


def weight_files(path: Path) -> list[Path]:
    """The files read_checkpoint reads for the folder (the same order of preference)."""
    if (path / "model.safetensors").exists():
        return [path / "model.safetensors"]
    if (path / "model.safetensors.index.json").exists():
        return [path / s for s in shard_names(path / "model.safetensors.index.json")]
    return [path / "pytorch_model.bin"] if (path / "pytorch_model.bin").exists() else []


def check_weight_files(path: Path, cfg: ModelConfig) -> None:
    """Refuse, before reading, weight files much larger than the model the config describes: a checkpoint holds at
    most the parameters in float32 plus a tied head kept twice and heads the core does not load (BERT's pooler and
    masked-LM head, a few percent), so more than twice that is data the loader would read only to reject it."""
    size = sum(f.stat().st_size for f in weight_files(path) if f.exists())
    allowed = 2 * model_bytes(cfg) + 64_000_000
    if size > allowed:
        raise ValueError(f"{path}: its weight files hold {size / 1e6:,.0f} MB, far more than the "
                         f"{model_bytes(cfg) / 1e6:,.0f} MB that its config.json describes")


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """model.safetensors, or pytorch_model.bin read with weights_only=True (no pickled code runs)."""
    if (path / "model.safetensors").exists():
        return read_safetensors(path / "model.safetensors")
    if (path / "model.safetensors.index.json").exists():  # a sharded checkpoint
        return {k: v for shard in shard_names(path / "model.safetensors.index.json")
                for k, v in read_safetensors(path / shard).items()}
    if (path / "pytorch_model.bin").exists():
        try:
            return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"{path / 'pytorch_model.bin'} could not be read safely: {err}") from err
    raise FileNotFoundError(f"{path} has neither model.safetensors nor pytorch_model.bin")


def config_from_hf(hf: dict) -> ModelConfig:
    """A transformers config.json as a ModelConfig. Every size is checked by ModelConfig (whole numbers within
    core.config.LIMITS); a missing key or a value of the wrong kind is a ValueError naming it."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json holds {type(hf).__name__}, not an object")
    try:
        return _config_from_hf(hf)
    except KeyError as err:
        raise ValueError(f"config.json lacks {err}") from None
    except TypeError as err:  # e.g. a list where a number belongs
        raise ValueError(f"config.json holds a value of the wrong kind ({err})") from None


def _config_from_hf(hf: dict) -> ModelConfig:
    kind = hf.get("model_type")
    if kind == "gpt2":
        if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("reorder_and_upcast_attn"):
            raise ValueError("GPT-2 variants with scale_attn_by_inverse_layer_idx/reorder_and_upcast_attn are not supported")
        if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"unsupported GPT-2 activation {hf.get('activation_function')!r}")
        return ModelConfig(
            vocab_size=hf["vocab_size"], n_ctx=hf["n_positions"], d_model=hf["n_embd"], n_layers=hf["n_layer"],
            n_heads=hf["n_head"], d_mlp=hf.get("n_inner"), norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            tied_embeddings=hf.get("tie_word_embeddings", True), family="gpt2",
            name=hf.get("_name_or_path") or "gpt2",
        )
    if kind == "llama":
        if hf.get("rope_scaling"):
            raise ValueError("Llama checkpoints with rope_scaling are not supported yet")
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"unsupported Llama activation {hf.get('hidden_act')!r}")
        if hf.get("attention_bias") or hf.get("mlp_bias"):
            raise ValueError("Llama checkpoints with biases are not supported")
        return ModelConfig(
            vocab_size=hf["vocab_size"], n_ctx=_computed_context(hf["max_position_embeddings"]),
            d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"], n_heads=hf["num_attention_heads"],
            n_kv_heads=hf.get("num_key_value_heads"), d_head=hf.get("head_dim"), d_mlp=hf["intermediate_size"],
            positional="rope", norm="rmsnorm", mlp="swiglu", bias=False,
            tied_embeddings=hf.get("tie_word_embeddings", False), norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=hf.get("rope_theta", 10000.0), family="llama", name=hf.get("_name_or_path") or "llama",
        )
    if kind == "bert":
        if hf.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported BERT activation {hf.get('hidden_act')!r}")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT checkpoints with absolute position embeddings are supported")
        return ModelConfig(
            vocab_size=hf["vocab_size"], n_ctx=hf["max_position_embeddings"], d_model=hf["hidden_size"],
            n_layers=hf["num_hidden_layers"], n_heads=hf["num_attention_heads"], d_mlp=hf["intermediate_size"],
            mlp="gelu_exact", causal=False, post_norm=True, n_token_types=hf.get("type_vocab_size", 2),
            lm_head=False, norm_eps=hf.get("layer_norm_eps", 1e-12), family="bert",
            name=hf.get("_name_or_path") or "bert",
        )
    raise ValueError(f"unsupported model_type {kind!r}: GPT-2, Llama and BERT checkpoints are supported")


def _computed_context(n_ctx: object) -> object:
    """RoPE's cos/sin tables are computed for every position of n_ctx: build them for at most MAX_COMPUTED_CONTEXT
    (a value that is not a whole number is left for ModelConfig to refuse by name)."""
    if isinstance(n_ctx, int) and not isinstance(n_ctx, bool):
        return min(n_ctx, MAX_COMPUTED_CONTEXT)
    return n_ctx


def model_bytes(cfg: ModelConfig) -> int:
    """What a model built from `cfg` holds, in bytes: its parameters in float32 (the core computes in fp32) plus the
    position tables it computes (RoPE's cos and sin, a sinusoidal table)."""
    from core.parameters import total

    tables = {"rope": 2 * cfg.n_ctx * cfg.head_dim, "sinusoidal": cfg.n_ctx * cfg.d_model}.get(cfg.positional, 0)
    return 4 * (total(cfg) + tables)


def check_fits(cfg: ModelConfig, name: str) -> None:
    """TooBig, before anything is allocated, when the model would not fit in the server's memory budget
    (core.budget.limit_bytes: GLASSBOX_MEMORY_BUDGET, or a share of the container's or the machine's memory)."""
    from core.budget import TooBig, limit_bytes
    from core.parameters import total

    need, budget = model_bytes(cfg), limit_bytes()
    if need > budget:
        raise TooBig(f"{name} is too big for this server: {total(cfg):,} parameters need {need / 1e9:.1f} GB "
                     f"(float32), over the server's memory budget of {budget / 1e9:.1f} GB")


def _finish(model: Transformer, device: str | torch.device) -> Transformer:
    model.eval().requires_grad_(False)
    return model.to(resolve_device(device))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but no GPU is available")
    return device


def load_dir(
    path: str | Path,
    device: str | torch.device = "auto",
    tokenizer: Tokenizer | None = None,
    weights: Path | None = None,
) -> Transformer:
    """A local model folder: our own format (config.json with "format": "glassbox") or an HF GPT-2/Llama/BERT one.

    `weights` picks another safetensors file of the same architecture (a training snapshot)."""
    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json")
    check_asset(path / "config.json")
    try:
        meta = json.loads((path / "config.json").read_text())
    except ValueError as err:
        raise DamagedFile(f"{path / 'config.json'} is not valid JSON ({err})") from None
    if meta.get("format") == "glassbox":
        cfg = ModelConfig.from_dict(meta["model"])
        check_fits(cfg, cfg.name)
        model = empty_model(cfg)
        state = read_safetensors(weights) if weights is not None else read_checkpoint(path)
        state = {k: v.float() for k, v in state.items()}  # training snapshots are fp16; the model computes in fp32
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise KeyError(f"{path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        spec = meta.get("tokenizer")
        if spec and tokenizer is None and spec.get("kind") == "words":
            tokenizer = WordTokenizer.from_file(path / spec["file"], cfg.name)
        elif spec and tokenizer is None:
            tokenizer = from_rank_file(
                path / spec["file"], name=cfg.name, pattern=spec["pattern"],
                special_tokens=spec["special_tokens"], sha256=spec.get("sha256"),
            )
    else:
        cfg = config_from_hf(meta)
        check_fits(cfg, cfg.name)
        check_weight_files(path, cfg)
        model = empty_model(cfg)
        prefix = {"gpt2": "transformer.", "bert": "bert."}.get(cfg.family, "")
        checkpoint = {k.removeprefix(prefix): v for k, v in read_checkpoint(path).items()}
        with torch.no_grad():
            assign(model, checkpoint, *MAPPINGS[cfg.family])
        if tokenizer is None and (path / "tokenizer.tiktoken").exists():
            tokenizer = from_rank_file(path / "tokenizer.tiktoken", name=cfg.name)
    model.tokenizer = tokenizer
    source = weights or next((path / f for f in ("model.safetensors", "model.safetensors.index.json",
                                                 "pytorch_model.bin") if (path / f).exists()), path)
    model.source = str(source)  # named when its numbers turn out damaged (core.loading.integrity.check_logits)
    check_finite(model, source)
    return _finish(model, device)


def check_finite(model: Transformer, source: Path) -> None:
    """Raise DamagedFile naming `source` when a weight holds NaN or ±inf (a damaged file loads, then every logit
    is NaN and sampling fails far from the cause). About 0.1 s for SmolLM2's 135M numbers."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise DamagedFile(f"{source}: the weight {name} holds NaN or infinite values; the file is damaged")


def save_weights(model: Transformer, file: str | Path, half: bool = False) -> None:
    """The model's state dict as safetensors (fp16 when `half`: the training snapshots)."""
    save_file({k: (v.detach().half() if half else v.detach()).contiguous() for k, v in model.state_dict().items()}, file)


def save_dir(model: Transformer, path: str | Path, tokenizer_spec: dict | None = None) -> None:
    """Write our own format: config.json, model.safetensors (fp32), and the tokenizer's description."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_weights(model, path / "model.safetensors")
    meta = {"format": "glassbox", "model": model.config.to_dict()}
    if tokenizer_spec:
        meta["tokenizer"] = tokenizer_spec
    (path / "config.json").write_text(json.dumps(meta, indent=2) + "\n")


def cache_dir() -> Path:
    return Path(os.environ.get("GLASSBOX_CACHE", Path.home() / ".cache" / "glassbox"))
