"""Where the parameters live: a model's parameter count, component by component, from its config alone.

`breakdown(cfg)` gives one row per component with the formula and the count; the rows add up to
`Transformer.num_params()` exactly for every model the core builds (a test checks it on each family). The same
formulas applied to published configurations show where "124 million" or "175 billion" come from. Each published
configuration names its source; numbers that were never published (GPT-4's size) are listed as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import ModelConfig


@dataclass(frozen=True)
class ParamRow:
    component: str
    formula: str  # in the config's letters (V vocabulary, d d_model, m MLP width, L layers …)
    count: int  # for the whole model (per-block rows: all L blocks together)
    per_block: bool = False


def _norm(cfg: ModelConfig) -> tuple[str, int]:
    if cfg.norm == "rmsnorm":
        return "d (gain)", cfg.d_model
    return ("2·d (gain, bias)", 2 * cfg.d_model) if cfg.bias else ("d (gain)", cfg.d_model)


def breakdown(cfg: ModelConfig, pooler: bool = False) -> list[ParamRow]:
    """The parameter count of a model built from `cfg`, by component. pooler: add BERT's pooler (a d × d layer on
    the [CLS] vector used for next-sentence prediction; Glassbox's encoders do not load it)."""
    d, m, L, V = cfg.d_model, cfg.mlp_dim, cfg.n_layers, cfg.vocab_size
    q_width, kv_width = cfg.n_heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim
    b = cfg.bias
    rows = [ParamRow("token embedding", "V·d", V * d)]
    if cfg.positional == "learned":
        rows.append(ParamRow("position embedding (learned)", "n_ctx·d", cfg.n_ctx * d))
    else:
        rows.append(ParamRow(f"positions ({'RoPE' if cfg.positional == 'rope' else 'sinusoidal'}: computed)", "0", 0))
    if cfg.n_token_types:
        rows.append(ParamRow("segment (token type) embedding", "types·d", cfg.n_token_types * d))
    norm_formula, norm_count = _norm(cfg)
    if cfg.post_norm:
        rows.append(ParamRow("embedding norm", norm_formula, norm_count))
    grouped = cfg.kv_heads != cfg.n_heads
    qkv = d * q_width + 2 * d * kv_width + (q_width + 2 * kv_width if b else 0)
    out = q_width * d + (d if b else 0)
    gated = cfg.mlp == "swiglu"
    mlp = cfg.mlp_matrices * d * m + (((2 * m + d) if gated else (m + d)) if b else 0)
    rows += [
        ParamRow("attention: query, key, value",
                 f"L·({'d·d + 2·d·(n_kv·hs)' if grouped else '3·d·d'}{' + biases' if b else ''})", L * qkv, True),
        ParamRow("attention: output projection", f"L·(d·d{' + d' if b else ''})", L * out, True),
        ParamRow("feed-forward (MLP)", f"L·({cfg.mlp_matrices}·d·m{' + biases' if b else ''})", L * mlp, True),
        ParamRow("norms inside the blocks (2 per block)", f"L·2·{norm_formula.split(' ')[0]}", L * 2 * norm_count, True),
    ]
    if not cfg.post_norm:
        rows.append(ParamRow("final norm", norm_formula, norm_count))
    if cfg.lm_head:
        rows.append(ParamRow("unembedding (tied: the token embedding reused)", "0", 0) if cfg.tied_embeddings
                    else ParamRow("unembedding", "V·d", V * d))
    else:
        rows.append(ParamRow("unembedding (none: an encoder has no language-model head)", "0", 0))
    if pooler:
        rows.append(ParamRow("pooler (BERT's [CLS] layer)", "d·d + d", d * d + d))
    return rows


def total(cfg: ModelConfig, pooler: bool = False) -> int:
    return sum(row.count for row in breakdown(cfg, pooler))


@dataclass(frozen=True)
class Published:
    name: str
    config: ModelConfig
    source: str
    stated: str  # what the authors state
    pooler: bool = False


PUBLISHED = [
    Published("GPT-2 small", ModelConfig(name="gpt2"),
              "openai-community/gpt2, config.json (HF Hub)", "124M (stated as 117M in the paper)"),
    Published("GPT-2 XL", ModelConfig(d_model=1600, n_layers=48, n_heads=25, name="gpt2-xl"),
              "openai-community/gpt2-xl, config.json (HF Hub)", "1.5B"),
    Published("GPT-3 175B", ModelConfig(n_ctx=2048, d_model=12288, n_layers=96, n_heads=96, name="gpt-3"),
              "Brown et al. 2020, Table 2.1", "175.0B"),
    Published("BERT-base", ModelConfig(vocab_size=30522, n_ctx=512, d_model=768, n_layers=12, n_heads=12,
                                       mlp="gelu_exact", causal=False, post_norm=True, n_token_types=2,
                                       lm_head=False, family="bert", name="bert-base"),
              "google-bert/bert-base-uncased, config.json (HF Hub)", "110M", pooler=True),
    Published("BERT-large", ModelConfig(vocab_size=30522, n_ctx=512, d_model=1024, n_layers=24, n_heads=16,
                                        mlp="gelu_exact", causal=False, post_norm=True, n_token_types=2,
                                        lm_head=False, family="bert", name="bert-large"),
              "google-bert/bert-large-uncased, config.json (HF Hub)", "340M", pooler=True),
]

NOT_PUBLISHED = {
    "GPT-4": "OpenAI's GPT-4 technical report (2023) gives no parameter count or architecture. Figures such as "
             "1.76 trillion or 1 trillion are press and blog estimates, not published facts.",
}
