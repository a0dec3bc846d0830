"""A readable byte-level BPE trainer (the tokenizer page runs it live on typed text).

Start from the 256 single bytes. Split the text into pieces with the same pre-tokenizer regex GPT-2 uses (BPE
never merges across piece boundaries), then repeatedly find the most frequent adjacent pair of symbols and merge
it into a new symbol. Each merge gets the next rank. The result is a tiktoken rank file: bytes 0..255 first, then
the merges in the order they were learned, so tiktoken encodes with exactly these merges.

Pair counts are updated incrementally (only the words containing the merged pair are touched), which keeps a few
thousand merges on a megabyte of text to seconds.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import regex

from core.loading.integrity import check_asset
from core.tokenizer import ASSETS, ENDOFTEXT, R50K_PATTERN, Tokenizer

SAMPLE_TEXT = ASSETS / "texts" / "bpe_sample.txt"  # a short story written for Glassbox (assets/texts/NOTICE.md)

Pair = tuple[bytes, bytes]


@dataclass(frozen=True)
class Merge:
    rank: int
    left: bytes
    right: bytes
    count: int  # how often the pair occurred when it was merged

    @property
    def token(self) -> bytes:
        return self.left + self.right


@dataclass
class BPEResult:
    ranks: dict[bytes, int]
    merges: list[Merge]
    pattern: str

    def tokenizer(self, name: str = "bpe", special_tokens: dict[str, int] | None = None) -> Tokenizer:
        """The learned vocabulary as a tiktoken-backed Tokenizer (end-of-text token after the last merge)."""
        special = {ENDOFTEXT: len(self.ranks)} if special_tokens is None else special_tokens
        return Tokenizer(name, self.ranks, self.pattern, special)


def _pairs(symbols: list[bytes]) -> Counter:
    return Counter(zip(symbols, symbols[1:]))


def train_bpe(
    text: str,
    n_merges: int,
    pattern: str = R50K_PATTERN,
    progress: Callable[[int, int], None] | None = None,
) -> BPEResult:
    """Learn up to `n_merges` merges from `text`. Stops early when no pair occurs twice."""
    piece_counts = Counter(m.group(0).encode("utf-8", "surrogatepass") for m in regex.finditer(pattern, text))
    words = [[bytes([b]) for b in piece] for piece in piece_counts]  # each distinct piece as a list of symbols
    freqs = list(piece_counts.values())
    pair_counts: Counter = Counter()
    where: dict[Pair, set[int]] = defaultdict(set)  # pair → indices of words that contain it
    for w, symbols in enumerate(words):
        for pair, n in _pairs(symbols).items():
            pair_counts[pair] += n * freqs[w]
            where[pair].add(w)

    ranks = {bytes([b]): b for b in range(256)}
    merges: list[Merge] = []
    while len(merges) < n_merges and pair_counts:
        # most frequent pair; ties go to the smallest bytes so training is deterministic
        best, count = min(pair_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < 2:
            break
        new = best[0] + best[1]
        if new in ranks:  # the same bytes already reached by another path: it cannot get a second rank
            del pair_counts[best]
            continue
        ranks[new] = len(ranks)
        merges.append(Merge(ranks[new], best[0], best[1], count))
        for w in list(where[best]):
            old = words[w]
            merged, i = [], 0
            while i < len(old):
                if i + 1 < len(old) and (old[i], old[i + 1]) == best:
                    merged.append(new)
                    i += 2
                else:
                    merged.append(old[i])
                    i += 1
            for pair, n in _pairs(old).items():
                pair_counts[pair] -= n * freqs[w]
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
                where[pair].discard(w)
            for pair, n in _pairs(merged).items():
                pair_counts[pair] += n * freqs[w]
                where[pair].add(w)
            words[w] = merged
        where.pop(best, None)
        if progress:
            progress(len(merges), n_merges)
    return BPEResult(ranks, merges, pattern)


def sample_text() -> str:
    """The small corpus the app trains a BPE on together with the learner's text."""
    check_asset(SAMPLE_TEXT)
    return SAMPLE_TEXT.read_text(encoding="utf-8")


def after_merges(result: BPEResult, k: int) -> BPEResult:
    """The same training stopped after its first k merges (ranks stay as they were)."""
    merges = result.merges[:k]
    ranks = {bytes([b]): b for b in range(256)} | {m.token: m.rank for m in merges}
    return BPEResult(ranks, merges, result.pattern)


def tokens_per_merge(result: BPEResult, text: str, points: int = 40) -> tuple[list[int], list[int]]:
    """How many tokens `text` takes after 0 … all merges, at about `points` evenly spread merge counts."""
    n = len(result.merges)
    steps = sorted({round(i * n / points) for i in range(points + 1)})
    return steps, [len(after_merges(result, k).tokenizer().encode(text)) for k in steps]
