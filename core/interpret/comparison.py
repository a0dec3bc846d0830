"""Two models on one text: the numbers that can be set side by side when the models differ in tokenizer, size and kind.

Token by token the models may not line up (each cuts the text its own way), so the comparisons here are made on what
they share: the text's bytes (loss per byte, surprise placed at the byte where a token ends) and the next token's
spelling (a candidate's probability under each model, where that model has a token spelled so).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.config import ModelConfig
from core.interpret.architecture import ACTIVATION
from core.interpret.surprisal import Surprisal
from core.loading import registry
from core.trace import Trace


def byte_ends(token_bytes: list[bytes]) -> list[int]:
    """Where each token ends, in bytes from the start of the text."""
    ends, at = [], 0
    for piece in token_bytes:
        at += len(piece)
        ends.append(at)
    return ends


def bits_per_byte(found: Surprisal, token_bytes: list[bytes]) -> float:
    """The text's loss per byte of the predicted tokens (tokens 1 … T−1), in bits: comparable between two tokenizers,
    where the loss per token is not (a model with longer tokens predicts fewer, harder ones)."""
    n_bytes = sum(len(b) for b in token_bytes[1:])
    if len(token_bytes) < 2 or n_bytes == 0:
        return math.nan
    return float(found.nll[1:].sum()) / math.log(2) / n_bytes


@dataclass(frozen=True)
class Candidate:
    spelling: bytes
    probs: tuple[float | None, float | None]  # under each model; None: it has no token spelled so


def _id(tokenizer, spelling: bytes) -> int | None:
    """The id of the one token spelled so (a special token such as <|endoftext|> included), or None."""
    try:
        return tokenizer.id_of(spelling)
    except (KeyError, ValueError):
        pass
    try:
        ids = tokenizer.encode_with_special(spelling.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return ids[0] if len(ids) == 1 and tokenizer.token_bytes(ids[0]) == spelling else None


def next_token_candidates(first: Trace, first_tok, second: Trace, second_tok, k: int = 8) -> list[Candidate]:
    """The union of both models' top-k next tokens, matched by spelling, most likely (under either) first."""
    spellings: dict[bytes, None] = {}
    for tr, tok in ((first, first_tok), (second, second_tok)):
        for i in tr.probs.topk(k).indices.tolist():
            spellings.setdefault(tok.token_bytes(i))
    rows = []
    for spelling in spellings:
        probs = []
        for tr, tok in ((first, first_tok), (second, second_tok)):
            i = _id(tok, spelling)
            probs.append(None if i is None else float(tr.probs[i]))
        rows.append(Candidate(spelling, (probs[0], probs[1])))
    return sorted(rows, key=lambda c: -max(p or 0.0 for p in c.probs))


def same_tokens(first: Trace, second: Trace) -> bool:
    """Both models cut the text into the same tokens with the same ids (one tokenizer, e.g. a fine-tuned copy)."""
    return first.token_ids == second.token_ids and first.config.vocab_size == second.config.vocab_size


def same_cuts(first: Trace, second: Trace) -> bool:
    """Both models cut the text in the same places (their ids may differ: two vocabularies)."""
    return first.token_bytes == second.token_bytes


def looks_at(pattern: torch.Tensor, query: int) -> tuple[int, float]:
    """(key, weight) where one head's query token puts most of its attention; pattern (T, T)."""
    weight, key = pattern[query].max(-1)
    return int(key), float(weight)


def config_rows(first: ModelConfig, second: ModelConfig, params: tuple[int, int], names: tuple[str, str]
                ) -> dict[str, list[str]]:
    """What each model is, from its config: a table of the two side by side (columns named `names`)."""

    def kind(c: ModelConfig) -> str:
        return "decoder: each token sees the ones before it" if c.causal else "encoder: each token sees all of them"

    def positions(c: ModelConfig) -> str:
        return {"learned": "learned vectors", "sinusoidal": "sines and cosines", "rope": "rotated q and k (RoPE)"}[
            c.positional]

    rows = {"": ["kind", "blocks", "attention heads per block", "vector size (d_model)", "feed-forward width, kind",
                 "vocabulary (tokens)", "context (tokens)", "positions", "norm", "parameters"]}
    for c, n, name in ((first, params[0], names[0]), (second, params[1], names[1])):
        heads = str(c.n_heads) + (f" (sharing {c.kv_heads} key/value heads)" if c.kv_heads != c.n_heads else "")
        feed_forward = f"{c.mlp_dim:,}; {ACTIVATION[c.mlp]}; {c.mlp_matrices} matrices"
        rows[name] = [kind(c), str(c.n_layers), heads, f"{c.d_model:,}", feed_forward,
                        f"{c.vocab_size:,}", f"{c.n_ctx:,}", positions(c),
                        f"{c.norm}, {'after' if c.post_norm else 'before'} each part", f"{n / 1e6:,.1f} M"]
    return rows


def partner(current: str) -> str:
    """The model to set beside `current` by default: another offline model of its kind (the embedded decoder beside
    SmolLM2 and the other way round), else the embedded model, else any other."""
    others = [e for e in registry.entries() if e.kind in ("decoder", "encoder") and e.name != current]
    kind = registry.get(current).kind
    alike = [e.name for e in others if e.kind == kind and e.source != "hub"]
    names = [e.name for e in others]
    return alike[0] if alike else registry.DEFAULT_MODEL if registry.DEFAULT_MODEL in names else names[0]
