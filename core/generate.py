"""Sampling, KV-cached generation, and a tree of generated branches.

`sampling_distribution` is the one place where temperature, top-k and top-p turn logits into the distribution a
token is drawn from, and `sample_token` the one place a token is drawn from it; the next-token page shows the
intermediate columns and `generate` and the page both sample with them. `GenerationTree` holds the branches a
learner explores one token at a time.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

import torch

from core.interventions import steer_edits
from core.loading.integrity import check_logits
from core.model import Recorder, Transformer


@dataclass
class SamplingColumns:
    """logit → logit/T → filtered (top-k, top-p; removed = -inf) → probability, all (V,). `candidates` is the
    distribution top-p cuts: after temperature and top-k."""

    logits: torch.Tensor
    scaled: torch.Tensor
    filtered: torch.Tensor
    probs: torch.Tensor
    candidates: torch.Tensor


def sampling_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> SamplingColumns:
    """The distribution sampling draws from. temperature 0 means greedy: all mass on the argmax.

    top_k: keep the k most likely tokens (None or 0: off). top_p: keep the smallest set of most likely tokens whose
    probabilities reach top_p; 1 (or None) is off, and as top_p falls towards 0 only the most likely token is left
    (it always stays)."""
    logits = logits.float()
    check_logits(logits, None)
    if temperature <= 0:
        probs = torch.zeros_like(logits)
        probs[logits.argmax()] = 1.0
        filtered = torch.full_like(logits, float("-inf"))
        filtered[logits.argmax()] = logits.max()
        return SamplingColumns(logits, logits, filtered, probs, probs)
    scaled = logits / temperature
    filtered = scaled.clone()
    if top_k is not None and 0 < top_k < logits.numel():
        kth = scaled.topk(top_k).values[-1]
        filtered[scaled < kth] = float("-inf")
    candidates = filtered.softmax(-1)
    if top_p is not None and top_p < 1:
        sorted_p, order = candidates.sort(descending=True)
        # drop a token when the tokens ranked above it already reach top_p; the top token always stays
        drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        drop_sorted[0] = False
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        filtered[drop] = float("-inf")
    return SamplingColumns(logits, scaled, filtered, filtered.softmax(-1), candidates)


def temperature_sweep(logits: torch.Tensor, temperatures: list[float]) -> tuple[list[float], list[float]]:
    """Entropy (nats) of the sampling distribution at each temperature T > 0 (no top-k, no top-p) and the most likely
    token's probability: every temperature at once, as one (temperatures, V) softmax — the same numbers as
    `sampling_distribution` and `entropy` one temperature at a time, in a few tensor operations instead of forty
    times ten (small operations each pay torch's thread start-up, which on a busy server costs a millisecond)."""
    logits = logits.float()
    check_logits(logits, None)
    temps = torch.tensor(temperatures, dtype=torch.float32)
    if (temps <= 0).any():
        raise ValueError("the sweep's temperatures must be above 0")
    probs = (logits[None] / temps[:, None]).softmax(-1)  # (temperatures, V)
    terms = torch.where(probs > 0, probs * probs.log(), torch.zeros(()))
    return (-terms.sum(-1)).tolist(), probs.max(-1).values.tolist()


def entropy(probs: torch.Tensor) -> float:
    """Shannon entropy in nats; e^entropy is the 'effective number of choices'."""
    p = probs[probs > 0]
    return float(-(p * p.log()).sum())


def sample_token(columns: SamplingColumns, generator: torch.Generator, greedy: bool = False) -> int:
    """One token from a sampling distribution; greedy (temperature 0) takes the most likely one."""
    if greedy:
        return int(columns.probs.argmax())
    return int(torch.multinomial(columns.probs, 1, generator=generator))


@dataclass
class GenerationTree:
    """Branches of generated tokens after one prompt: node 0 is the prompt; every other node is one token after its
    parent. Adding a token that a node already has goes to that child. At most `max_nodes` nodes."""

    max_nodes: int = 500
    parents: list[int | None] = field(default_factory=lambda: [None])
    token_ids: list[int | None] = field(default_factory=lambda: [None])
    probs: list[float | None] = field(default_factory=lambda: [None])  # the probability each token was chosen with
    current: int = 0

    def __len__(self) -> int:
        return len(self.parents)

    @property
    def full(self) -> bool:
        return len(self) >= self.max_nodes

    def children(self, node: int) -> list[int]:
        return [i for i, parent in enumerate(self.parents) if parent == node]

    def add(self, token_id: int, prob: float | None = None) -> int:
        """Step from the current node to its child with this token (made if new; `prob`: the probability it had
        there); returns that node. A full tree only steps to existing children (ValueError otherwise)."""
        child = next((i for i in self.children(self.current) if self.token_ids[i] == token_id), None)
        if child is None:
            if self.full:
                raise ValueError(f"the tree holds its maximum of {self.max_nodes} nodes")
            self.parents.append(self.current)
            self.token_ids.append(token_id)
            self.probs.append(prob)
            child = len(self) - 1
        self.current = child
        return child

    def path(self, node: int | None = None) -> list[int]:
        """The generated token ids from the prompt to `node` (the current node by default)."""
        node = self.current if node is None else node
        out = []
        while self.parents[node] is not None:
            out.append(self.token_ids[node])
            node = self.parents[node]
        return out[::-1]

    def layout(self) -> list[tuple[int, int]]:
        """(depth, row) of every node for drawing: children to the right of their parent, each branch end on a row
        of its own, a parent on the row of its first child."""
        place: dict[int, tuple[int, int]] = {}
        next_row = 0

        def visit(node: int, depth: int) -> int:
            nonlocal next_row
            rows = [visit(child, depth + 1) for child in self.children(node)]
            if not rows:
                rows, next_row = [next_row], next_row + 1
            place[node] = (depth, rows[0])
            return rows[0]

        visit(0, 0)
        return [place[i] for i in range(len(self))]

    def on_path(self) -> set[int]:
        """The nodes from the prompt to the current node."""
        node, out = self.current, {self.current}
        while self.parents[node] is not None:
            node = self.parents[node]
            out.add(node)
        return out

    def leaves(self) -> list[int]:
        """Nodes without children: the ends of the branches."""
        has_child = set(self.parents)
        return [i for i in range(len(self)) if i not in has_child]


@dataclass
class GenerationStep:
    token_id: int
    token: str
    probs: torch.Tensor = field(repr=False)  # (V,) the distribution this token was drawn from


@dataclass
class Generation:
    prompt_ids: list[int]
    new_ids: list[int]
    steps: list[GenerationStep]
    text: str  # the decoded new tokens, whole characters only ("" when the model has no tokenizer)
    stopped: str  # "max_new_tokens", "eot" or "context"
    unfinished: bytes = b""  # the last tokens' bytes that begin a character the next token would finish

    def shown(self) -> str:
        return shown(self.text, self.unfinished)


def shown(text: str, unfinished: bytes) -> str:
    """A decoded text and its unfinished last character named as what it is (not shown as "\ufffd")."""
    n = len(unfinished)
    return text + (f" ⟨{n} byte{'s' if n > 1 else ''} of an unfinished character: {unfinished.hex(' ').upper()}⟩"
                   if n else "")


def unfinished_tail(data: bytes) -> int:
    """How many bytes at the end of `data` begin a UTF-8 character without finishing it (0 to 3): a byte-level
    tokenizer may split one character (an emoji, a CJK character) over several tokens, and a generation that stops
    between them ends in the first ones."""
    for n in range(1, min(4, len(data)) + 1):
        byte = data[-n]
        if byte & 0xC0 != 0x80:  # not a continuation byte: the character's first byte
            needed = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
            return n if n < needed else 0
    return 0


def decoded(tok, ids: list[int]) -> tuple[str, bytes]:
    """The text of `ids` in whole characters and the bytes of an unfinished last one (see `unfinished_tail`)."""
    text = tok.decode(ids)
    raw = b"".join(tok.token_bytes(i) for i in ids)
    cut = unfinished_tail(raw)
    if cut and text.endswith("\ufffd"):  # what the decoder made of the unfinished bytes
        return text[:-1], raw[-cut:]
    return text, b""


def check_sampling(model: Transformer, prompt: str | list[int], max_new_tokens: int, temperature: float,
                   top_k: int | None, top_p: float | None) -> None:
    """ValueError for a temperature or top_p that is not a finite number in range (NaN sampled from NaN), a
    negative max_new_tokens or top_k, or prompt ids outside the model's vocabulary."""
    for label, value in (("temperature", temperature), ("top_p", top_p)):
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"{label} must be a finite number, not {value!r}")
    if temperature < 0 or (top_p is not None and not 0 <= top_p <= 1):
        raise ValueError(f"temperature must be ≥ 0 (0: greedy) and top_p between 0 and 1, not {temperature}, {top_p}")
    if max_new_tokens < 0 or (top_k is not None and top_k < 0):
        raise ValueError(f"max_new_tokens and top_k cannot be negative ({max_new_tokens}, {top_k})")
    if not isinstance(prompt, str):
        vocab = model.config.vocab_size
        outside = [i for i in prompt if not 0 <= int(i) < vocab]
        if outside:
            raise ValueError(f"prompt ids {outside[:5]} are outside the vocabulary (0 to {vocab - 1})")


def generate(
    model: Transformer,
    prompt: str | list[int],
    max_new_tokens: int = 20,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_at_eot: bool = True,
    steer: dict | None = None,
) -> Generation:
    """Sample up to `max_new_tokens` tokens with a KV cache. Each step keeps the distribution it sampled from.
    steer: as trace()'s (core.interventions), applied at every step, to the prompt and to each new token.
    ValueError, before any work, for settings that cannot be sampled with (see check_sampling)."""
    check_sampling(model, prompt, max_new_tokens, temperature, top_k, top_p)
    tok = model.tokenizer
    if isinstance(prompt, str):
        if tok is None:
            raise ValueError("this model has no tokenizer: pass a list of token ids")
        prompt_ids = tok.encode(prompt)
    else:
        prompt_ids = [int(i) for i in prompt]
    if not prompt_ids:
        if tok is None or tok.eot_id is None:
            raise ValueError("an empty prompt needs a tokenizer with an end-of-text token to start from")
        prompt_ids = [tok.eot_id]
    n_ctx = model.config.n_ctx
    prompt_ids = prompt_ids[-(n_ctx - 1) :] if n_ctx > 1 else prompt_ids[-1:]  # keep room for one new token
    generator = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
    eot = tok.eot_id if tok is not None else None
    steps: list[GenerationStep] = []
    stopped = "max_new_tokens"
    with torch.inference_mode():
        idx = torch.tensor([prompt_ids], dtype=torch.long, device=model.device)  # (1, T)
        rec = Recorder((), edits=steer_edits(model.config, steer)) if steer else None  # the same edit every call
        logits, past = model(idx, rec=rec)  # (1, V)
        check_logits(logits, getattr(model, "source", None))
        for n in range(max_new_tokens):
            columns = sampling_distribution(logits[0].cpu(), temperature, top_k, top_p)
            next_id = sample_token(columns, generator, greedy=temperature <= 0)
            steps.append(GenerationStep(next_id, tok.display(next_id) if tok else str(next_id), columns.probs))
            if stop_at_eot and next_id == eot:
                stopped = "eot"
                break
            if len(prompt_ids) + n + 1 >= n_ctx:
                stopped = "context"
                break
            if n + 1 < max_new_tokens:
                logits, past = model(torch.tensor([[next_id]], device=model.device), rec=rec, past=past)
    new_ids = [s.token_id for s in steps]
    text, unfinished = decoded(tok, new_ids) if tok else ("", b"")
    return Generation(prompt_ids, new_ids, steps, text, stopped, unfinished)


@dataclass
class TimedGeneration:
    new_ids: list[int]
    seconds_per_token: float
    cached: bool


def greedy(model: Transformer, prompt_ids: list[int], n_new: int, use_cache: bool = True) -> TimedGeneration:
    """The n_new most likely next tokens, one at a time, timed. With the KV cache each step feeds only the new token
    and reuses every earlier key and value; without it each step runs the whole sequence again. Both must give the
    same tokens (a test checks it); the time shows what the cache saves."""
    import time

    ids = list(prompt_ids)[-(model.config.n_ctx - n_new):] if n_new < model.config.n_ctx else list(prompt_ids)[-1:]
    new: list[int] = []
    with torch.inference_mode():
        start = time.perf_counter()
        logits, past = model(torch.tensor([ids], device=model.device))
        for step in range(n_new):
            next_id = int(logits[0].argmax())
            new.append(next_id)
            if step + 1 == n_new:
                break
            if use_cache:
                logits, past = model(torch.tensor([[next_id]], device=model.device), past=past)
            else:
                logits, _ = model(torch.tensor([ids + new], device=model.device))
        seconds = time.perf_counter() - start
    return TimedGeneration(new, seconds / max(n_new, 1), use_cache)


@dataclass(frozen=True)
class Spread:
    """One quantity measured several times: the values, their median and their range. Two spreads whose ranges
    overlap cannot be told apart by these measurements (the difference is within noise)."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def overlaps(self, other: Spread) -> bool:
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class CacheTiming:
    """One generation step timed with and without the KV cache, repeated (see time_step)."""

    n_prompt: int  # tokens already read: the step writes token n_prompt + 1
    cached: Spread  # seconds for the step with the cache (the new token only, the others' keys and values reused)
    uncached: Spread  # seconds for the same step recomputing the whole text
    speedup: Spread  # uncached / cached, one ratio per repeat (the two runs of a repeat back to back)
    same_tokens: bool  # both ways chose the same next token

    @property
    def within_noise(self) -> bool:
        """The two ways' ranges overlap: these runs cannot say which is faster."""
        return self.cached.overlaps(self.uncached)


def time_step(model: Transformer, prompt_ids: list[int], repeats: int = 5) -> CacheTiming:
    """Time one generation step after `prompt_ids` both ways: with the KV cache (the prompt's keys and values from
    one untimed prefill, the step runs the model on the one new token) and without (the step runs the model on the
    whole text again). One untimed run each way first (the first call of a shape pays one-time costs: allocations,
    kernels picked), then `repeats` timed pairs, the two ways back to back and alternating which goes first, so that
    a slow spell of a busy machine falls on both."""
    import time

    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    ids = list(prompt_ids)[-(model.config.n_ctx - 1):]
    device = model.device
    with torch.inference_mode():
        logits, past = model(torch.tensor([ids], device=device))  # the prefill, the same for both ways
        next_id = int(logits[0].argmax())
        new = torch.tensor([[next_id]], device=device)  # (1, 1)
        whole = torch.tensor([ids + [next_id]], device=device)  # (1, T + 1)

        def step(use_cache: bool) -> tuple[float, int]:
            start = time.perf_counter()
            out, _ = model(new, past=past) if use_cache else model(whole)
            return time.perf_counter() - start, int(out[0].argmax())

        step(True), step(False)  # warm-up, untimed
        times: dict[bool, list[float]] = {True: [], False: []}
        chosen = set()
        for repeat in range(repeats):
            for use_cache in ((True, False) if repeat % 2 == 0 else (False, True)):
                seconds, token = step(use_cache)
                times[use_cache].append(seconds)
                chosen.add(token)
    cached, uncached = times[True], times[False]
    return CacheTiming(len(ids), Spread(tuple(cached)), Spread(tuple(uncached)),
                       Spread(tuple(u / c for u, c in zip(uncached, cached))), len(chosen) == 1)


def kv_cache_bytes(cfg, n_tokens: int, bytes_per_number: int = 4) -> int:
    """The KV cache's size after n_tokens: a key and a value vector per layer, key/value head and token."""
    return 2 * cfg.n_layers * cfg.kv_heads * cfg.head_dim * n_tokens * bytes_per_number
