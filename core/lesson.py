"""One forward pass of one text, gathered for the guided lesson (pages/lesson.py) and its quizzes: at every stage
the few real numbers a learner can read — those of the last token, in block 0, for one head — plus the whole-model
numbers the later stages need (the stream's length after every block, the final norm, the logits, temperature,
the next tokens).

Everything is read from one recorded forward pass or computed by the helpers the pages use (core.interpret's
query_math, norm_steps, forward_summary): the lesson shows the same numbers as the full pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from core.config import ModelConfig
from core.generate import greedy, sampling_distribution
from core.interpret.attention_math import QueryMath, query_math
from core.interpret.embeddings import word_tokens
from core.interpret.heads import previous_token_scores
from core.interpret.lens import ForwardSummary, forward_summary
from core.interpret.norms import NORM_RECORD, NormSteps, norm_of, norm_steps
from core.model import Transformer
from core.trace import Trace, attention_record, grow, hook, layer_patterns, mlp_record, trace

LAYER = 0  # the block the lesson opens up
TEMPERATURES = (0.5, 1.0, 2.0)
N_NEXT = 8  # tokens generated greedily at the end of the lesson


@dataclass(frozen=True)
class Lesson:
    tokens: list[str]
    token_ids: list[int]
    n_truncated: int
    query: int  # the position the lesson follows: the last token (an encoder's: the last before [SEP])
    head: int  # the block-0 head it opens up: the one of block 0 that looks most at the previous token
    previous_token: torch.Tensor  # (layers, heads) mean attention to the token just before
    embed: torch.Tensor  # (d,) the followed token's embedding row
    position: torch.Tensor | None  # (d,) the position vector added to it (None: RoPE, nothing is added)
    segment: torch.Tensor | None  # (d,) BERT's segment vector (None for other models)
    block_input: torch.Tensor  # (d,) what enters block 0 (the sum, normalised for a post-norm model)
    math: QueryMath  # block 0, `head`, query = the followed token
    values: torch.Tensor  # (T, hs) block 0, `head`: every key's value vector (math.z = math.weights @ values)
    mask_math: QueryMath  # block 0, `mask_head`, a query mid-way in mask_window: on a decoder, later keys are masked
    pattern: torch.Tensor  # (T, T) block 0, `head`: the whole attention pattern
    hidden: torch.Tensor  # (T, T) bool: what the model's mask hides (all False for an encoder)
    later_share: torch.Tensor  # (heads,) block 0: mean weight a token puts on the tokens AFTER it (0 for a decoder)
    mask_head: int  # the block-0 head the mask question draws: `head` for a decoder, the most forward-looking for an encoder
    mask_pattern: torch.Tensor  # (T, T) block 0, `mask_head`: its whole attention pattern
    heads_z: torch.Tensor  # (heads, hs) every head's weighted values for the followed token
    attn_out: torch.Tensor  # (d,) the heads concatenated and projected: what attention adds
    resid_mid: torch.Tensor  # (d,) block 0's stream after attention's add (and norm, post-norm)
    mlp_hidden: torch.Tensor  # (m,) the feed-forward layer's hidden units after the activation
    mlp_out: torch.Tensor  # (d,) what the feed-forward layer adds
    resid_post: torch.Tensor  # (d,) the stream leaving block 0
    summary: ForwardSummary  # every block, for the followed token (its first position): length, logit lens
    last_norm: NormSteps  # the model's last norm on the followed token
    top_ids: list[int] | None  # the 10 most likely next tokens (None: an encoder predicts none)
    top_logits: list[float] | None
    top_probs: list[float] | None
    by_temperature: dict[float, list[float]] | None  # T → probabilities of top_ids at that temperature
    next_ids: list[int] | None  # the next N_NEXT tokens, each the most likely one (temperature 0)


def lesson_record(cfg: ModelConfig) -> tuple[str, ...]:
    """What the lesson reads from the trace: the embedding stage, block LAYER's inside, every norm's input (every
    layer's attention pattern is computed from the stream, one layer at a time, for the previous-token scores)."""
    embeds = ("hook_embed", "hook_pos_embed", "hook_token_type_embed", "ln_embed.hook_normalized",
              hook(LAYER, "hook_resid_pre"), hook(LAYER, "hook_attn_out"), hook(LAYER, "hook_resid_post"))
    return embeds + NORM_RECORD + attention_record(LAYER) + mlp_record(LAYER)


def lesson(model: Transformer, text: str | Trace, max_tokens: int | None = None) -> Lesson:
    """The lesson's numbers for a text, or for a Trace of it that is grown with what the lesson needs
    (core.trace.grow): one recorded forward pass either way."""
    cfg = model.config
    record = lesson_record(cfg)
    tr = grow(model, text, record) if isinstance(text, Trace) else trace(model, text, record=record,
                                                                          max_tokens=max_tokens)
    specials = set(model.tokenizer.special_tokens.values()) if cfg.causal is False and model.tokenizer else set()
    # a decoder's prediction is made at its last token; an encoder's last token is [SEP]: follow the last word
    q = max((i for i, t in enumerate(tr.token_ids) if t not in specials), default=tr.n_tokens - 1)
    prev = previous_token_scores(layer_patterns(model, tr)) if tr.n_tokens > 1 else torch.zeros(cfg.n_layers, cfg.n_heads)
    head = int(prev[LAYER].argmax())
    later = later_token_share(tr.pattern(LAYER))
    mask_head = head if cfg.causal else int(later.argmax())
    optional = {n: tr[n][q] if n in tr else None for n in ("hook_pos_embed", "hook_token_type_embed")}
    if cfg.post_norm:
        entry = tr["ln_embed.hook_normalized"][q]
    else:
        entry = tr.resid_pre(LAYER)[q]
    top = ids = logits = probs = temps = nxt = None
    if tr.logits is not None:
        top = tr.logits.float().topk(10)
        ids, logits = top.indices.tolist(), top.values.tolist()
        probs = tr.probs[top.indices].tolist()
        temps = {t: sampling_distribution(tr.logits, t).probs[top.indices].tolist() for t in TEMPERATURES}
        nxt = greedy(model, tr.token_ids, N_NEXT).new_ids
    return Lesson(
        tokens=tr.tokens, token_ids=tr.token_ids, n_truncated=tr.n_truncated, query=q, head=head,
        previous_token=prev, embed=tr.embed()[q], position=optional["hook_pos_embed"],
        segment=optional["hook_token_type_embed"], block_input=entry, math=query_math(tr, LAYER, head, q),
        values=tr.qkv(LAYER)[2][:, cfg.kv_head(head)],
        mask_math=query_math(tr, LAYER, mask_head, mask_row(tr.n_tokens, q)),
        pattern=tr.pattern(LAYER)[head], hidden=tr.hidden(), later_share=later, mask_head=mask_head,
        mask_pattern=tr.pattern(LAYER)[mask_head],
        heads_z=tr.z(LAYER)[q], attn_out=tr.attn_out(LAYER)[q], resid_mid=tr.resid_mid(LAYER)[q],
        mlp_hidden=tr.mlp_post(LAYER)[q], mlp_out=tr.mlp_out(LAYER)[q], resid_post=tr.resid_post(LAYER)[q],
        # the window starts at the followed token: an encoder's is not the last ([SEP] is)
        summary=forward_summary(model, tr, window=tr.n_tokens - q), last_norm=norm_steps(model, tr, norm_of(cfg), q),
        top_ids=ids, top_logits=logits, top_probs=probs, by_temperature=temps, next_ids=nxt,
    )


def later_token_share(pattern: torch.Tensor) -> torch.Tensor:
    """(heads,): the weight each head puts on the keys after the query, summed over those keys and averaged over the
    queries that have one — 0 for a causal model, whose mask hides them all. pattern: (heads, T, T)."""
    T = pattern.shape[-1]
    if T < 2:
        return torch.zeros(pattern.shape[0])
    after = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)  # (T, T): key j after query i
    return (pattern.float() * after).sum(-1)[:, :-1].mean(-1)  # (heads,)


def mask_window(n_tokens: int, query: int, size: int = 8) -> range:
    """The positions a small mask picture shows: `size` consecutive tokens that hold the followed query's row (and
    the token after it, where there is one: an encoder's [SEP]), as far right as the text allows."""
    end = min(n_tokens, query + 2)
    return range(max(0, end - size), end)


def mask_row(n_tokens: int, query: int) -> int:
    """The query whose scores the mask step draws: mid-way in mask_window, so a decoder's later keys are masked."""
    shown = mask_window(n_tokens, query)
    return shown.start + (len(shown) - 1) // 2


def most_split_word(tokenizer, text: str) -> tuple[str, int] | None:
    """The word of `text` that the tokenizer cuts into the most tokens (the longest such word on a tie), with its
    number of tokens as they stand in the text; None when the text has no word."""
    best = None
    for match in re.finditer(r"[^\W_]+", text):
        word = match.group()
        n = len(word_tokens(tokenizer, text, word))
        if n and (best is None or (n, len(word)) > (best[1], len(best[0]))):
            best = (word, n)
    return best
