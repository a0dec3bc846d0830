"""ModelConfig: the one description of every transformer the core can build.

Three families meet learners, and one frozen dataclass covers them all:
- GPT-2: learned absolute positions, LayerNorm, GELU MLP, biases, tied unembedding.
- Llama (SmolLM2, Llama 3): rotary positions (RoPE), RMSNorm, SwiGLU MLP, grouped-query attention, no biases.
- The original transformer paper's fixed sinusoidal positions, as a third positional scheme, and its
  encoder–decoder (n_decoder_layers > 0, built by core.seq2seq).
Change a config with `dataclasses.replace`; derived values are properties.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

Positional = Literal["learned", "sinusoidal", "rope"]
Norm = Literal["layernorm", "rmsnorm"]
MLPKind = Literal["gelu", "gelu_exact", "swiglu", "relu"]  # gelu: the tanh approximation GPT-2 uses; relu: the paper

# The largest shape the core builds: a config from a Hub repo is hostile until checked, and a model object with 100,000
# blocks costs minutes and gigabytes before any weight is read. Each limit is several times the largest published model
# of the three families (Llama 3.1 405B: 126 layers, d 16,384, MLP 53,248, 128 heads; Gemma's 256k vocabulary).
LIMITS = {
    "n_layers": 512, "n_decoder_layers": 512, "d_model": 65_536, "n_heads": 1024, "head_dim": 4096,
    "mlp_dim": 262_144, "vocab_size": 2_097_152, "n_ctx": 1_048_576, "n_token_types": 1024,
}
# Positions whose table is computed, not read from the checkpoint (RoPE, sinusoidal), are built for at most this many
# tokens: the app never reads more (its text box holds 40,000 characters, and a trace of 32,768 tokens is already far
# over any server's memory), and a config claiming 4,194,304 positions would otherwise hold 2 GB of cos/sin tables.
MAX_COMPUTED_CONTEXT = 32_768


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 50257
    n_ctx: int = 1024  # context length: the most tokens one forward pass sees
    d_model: int = 768
    n_layers: int = 12  # an encoder–decoder: the encoder's blocks
    n_decoder_layers: int = 0  # > 0: an encoder–decoder (core.seq2seq) with this many decoder blocks
    n_heads: int = 12
    n_kv_heads: int | None = None  # grouped-query attention: fewer key/value heads than query heads
    d_head: int | None = None  # None: d_model // n_heads
    d_mlp: int | None = None  # None: 4 * d_model
    positional: Positional = "learned"
    norm: Norm = "layernorm"
    mlp: MLPKind = "gelu"
    bias: bool = True  # biases in attention and MLP linears
    tied_embeddings: bool = True  # unembedding = embedding matrix transposed
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    causal: bool = True  # False: every position attends to every other one (an encoder such as BERT)
    post_norm: bool = False  # BERT: norm after each residual add and after the embeddings, no final norm
    n_token_types: int = 0  # BERT: segment embeddings (sentence A / B)
    lm_head: bool = True  # False: no unembedding, so no next-token logits (an encoder)
    dropout: float = 0.0  # used only when training
    family: str = "gpt2"  # "gpt2", "llama" or "bert": how checkpoints name their weights
    name: str = "custom"

    def __post_init__(self) -> None:
        self._check_sizes()
        if self.n_heads % self.kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.kv_heads}")
        if self.d_head is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.positional not in ("learned", "sinusoidal", "rope"):
            raise ValueError(f"unknown positional scheme {self.positional!r}")
        if self.mlp not in ("gelu", "gelu_exact", "swiglu", "relu"):
            raise ValueError(f"unknown MLP kind {self.mlp!r}")
        if self.positional == "rope" and self.head_dim % 2:
            raise ValueError("RoPE needs an even head dimension")

    def _check_sizes(self) -> None:
        """Every size a whole number in range and every float finite, before anything is derived from them (a JSON
        config may hold 1e6, "768", true or 10**100 anywhere)."""
        positive = ("vocab_size", "n_ctx", "d_model", "n_layers", "n_heads")
        optional = ("n_kv_heads", "d_head", "d_mlp")
        for name in (*positive, *optional, "n_decoder_layers", "n_token_types"):
            value = getattr(self, name)
            if value is None and name in optional:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, not {value!r}")
            low = 1 if name in positive or name in optional else 0
            if value < low:
                raise ValueError(f"{name} must be {'positive' if low else 'at least 0'}, not {value}")
        for name, value in (("norm_eps", self.norm_eps), ("rope_theta", self.rope_theta), ("dropout", self.dropout)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, not {value!r}")
        if not (self.norm_eps > 0 and self.rope_theta > 0 and 0 <= self.dropout < 1):
            raise ValueError(f"norm_eps and rope_theta must be positive and dropout in [0, 1): {self.norm_eps}, "
                             f"{self.rope_theta}, {self.dropout}")
        sizes = {name: getattr(self, name) for name in LIMITS if name not in ("head_dim", "mlp_dim")}
        sizes.update(head_dim=self.head_dim, mlp_dim=self.mlp_dim)
        for name, value in sizes.items():
            if value > LIMITS[name]:
                shown = f"{value:,}" if value < 10**15 else f"about 10^{len(str(value)) - 1}"
                raise ValueError(f"{name}={shown} is over the {LIMITS[name]:,} that Glassbox builds")

    @property
    def encoder_decoder(self) -> bool:
        """Two stacks, as in "Attention Is All You Need": an encoder reads the source, a decoder writes the target."""
        return self.n_decoder_layers > 0

    @property
    def head_dim(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    def hidden_keys(self, start: int, n_keys: int) -> torch.Tensor | None:
        """(n_keys - start, n_keys) bool: True where query start + i may NOT see key j; None when all are visible.
        The model's one mask rule: every attention path applies it, and pages get it through Trace.hidden()."""
        if not self.causal:
            return None
        return torch.ones(n_keys - start, n_keys, dtype=torch.bool).triu(diagonal=start + 1)

    @property
    def plain_causal(self) -> bool:
        """The mask is exactly the causal triangle, which F.scaled_dot_product_attention's is_causal computes itself."""
        return self.causal

    @property
    def group_size(self) -> int:
        """Query heads that share one key/value head (1 without grouped-query attention)."""
        return self.n_heads // self.kv_heads

    def kv_head(self, head: int) -> int:
        """The key/value head a query head reads."""
        return head // self.group_size

    @property
    def mlp_dim(self) -> int:
        return self.d_mlp if self.d_mlp is not None else 4 * self.d_model

    @property
    def mlp_matrices(self) -> int:
        """The feed-forward layer's d × mlp_dim matrices: up and down, and SwiGLU's gate besides."""
        return 3 if self.mlp == "swiglu" else 2

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**d)


# Presets: one literal table. Parameter counts are for the whole model, embeddings included.
PRESETS: dict[str, ModelConfig] = {
    # 124M: GPT-2 small
    "gpt2": ModelConfig(name="gpt2"),
    # 82M: DistilGPT-2 (6 layers of GPT-2 small)
    "distilgpt2": ModelConfig(n_layers=6, name="distilgpt2"),
    # 355M: GPT-2 medium
    "gpt2-medium": ModelConfig(d_model=1024, n_layers=24, n_heads=16, name="gpt2-medium"),
    # 1.1M: the embedded TinyStories model (2,048-token BPE, 4 layers x 4 heads, 256 context)
    "tiny-stories-1m": ModelConfig(
        vocab_size=2048, n_ctx=256, d_model=128, n_layers=4, n_heads=4, dropout=0.1, name="tiny-stories-1m"
    ),
    # 0.1M: a tiny BERT-style encoder for tests (bidirectional, post-LN, token types, no LM head)
    "tiny-bert": ModelConfig(
        vocab_size=512, n_ctx=64, d_model=64, n_layers=2, n_heads=4, mlp="gelu_exact", causal=False, post_norm=True,
        n_token_types=2, lm_head=False, norm_eps=1e-12, family="bert", name="tiny-bert",
    ),
    # 0.7M: the English→French encoder–decoder (core.seq2seq; tools.train_translator): the paper's layout at toy size
    "translator-en-fr": ModelConfig(
        vocab_size=65, n_ctx=32, d_model=128, n_layers=2, n_decoder_layers=2, n_heads=4, d_mlp=256,
        positional="sinusoidal", mlp="relu", post_norm=True, dropout=0.1, family="seq2seq", name="translator-en-fr",
    ),
    # 0.1M: for tests and quick experiments with sinusoidal positions
    "tiny-sinusoidal": ModelConfig(
        vocab_size=512, n_ctx=64, d_model=64, n_layers=2, n_heads=4, positional="sinusoidal", name="tiny-sinusoidal"
    ),
    # 0.1M: a tiny Llama-style model (RoPE, RMSNorm, SwiGLU, 4 query heads sharing 2 KV heads)
    "tiny-llama": ModelConfig(
        vocab_size=512, n_ctx=64, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_mlp=172,
        positional="rope", norm="rmsnorm", mlp="swiglu", bias=False, norm_eps=1e-6, family="llama",
        name="tiny-llama",
    ),
}
