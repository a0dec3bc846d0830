"""Tokenizers: tiktoken Encodings built from rank files shipped in assets/, never downloaded.

gpt2 (= r50k_base), cl100k_base and o200k_base come from assets/tokenizers/ and are checked by sha256; a model's
own byte-level BPE (a rank file written by core.bpe) goes through the same machinery. On top of tiktoken this adds
what a learner needs to see: each token's raw bytes and a display string that never fails on a partial UTF-8
character, and a replay of the BPE merges that turn a piece of text into its tokens.

Vocabularies that tiktoken cannot express exactly (SmolLM2's byte-level BPE lacks 21 of the 256 single bytes, which
tiktoken requires; BERT's WordPiece is not BPE at all) go through the `tokenizers` library behind the same
interface (`HFTokenizer`).

User text is always encoded as ordinary text: a typed "<|endoftext|>" is just characters, never a special token.
`encode_with_special` is the one exception, for text the app builds itself (a chat template).
"""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import regex
import tiktoken

from core.loading.integrity import ASSETS, check_asset

TOKENIZER_DIR = ASSETS / "tokenizers"

ENDOFTEXT = "<|endoftext|>"
BOS, EOS, UNK = "<s>", "</s>", "<unk>"  # a word vocabulary's specials (WordTokenizer)
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
PATTERNS = {"r50k": R50K_PATTERN, "cl100k": CL100K_PATTERN, "o200k": O200K_PATTERN}

# name: (rank file, sha256, pattern, special tokens)
BUILTIN = {
    "gpt2": (
        "gpt2.tiktoken",
        "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
        R50K_PATTERN,
        {ENDOFTEXT: 50256},
    ),
    "cl100k_base": (
        "cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        CL100K_PATTERN,
        {ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
         "<|endofprompt|>": 100276},
    ),
    "o200k_base": (
        "o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        O200K_PATTERN,
        {ENDOFTEXT: 199999, "<|endofprompt|>": 200018},
    ),
}
ALIASES = {"r50k_base": "gpt2"}


BYTE_TOKEN = regex.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece's byte-fallback tokens
SURROGATE = regex.compile("[\ud800-\udfff]")


def scalar_text(text: str) -> str:
    """`text` with every surrogate code point (a lone half of a UTF-16 pair, which no UTF-8 text can hold) replaced
    by U+FFFD, one for one: what tiktoken does, so every tokenizer here sees the same text and offsets stay put."""
    return SURROGATE.sub("\ufffd", text) if SURROGATE.search(text) else text


def read_ranks(path: str | Path, sha256: str | None = None) -> dict[bytes, int]:
    """Parse a tiktoken rank file ("base64(token) rank" per line), checking its sha256 when one is given."""
    check_asset(path)
    data = Path(path).read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"{Path(path).name}: sha256 mismatch, the shipped rank file is damaged")
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def write_ranks(ranks: dict[bytes, int], path: str | Path) -> None:
    lines = [base64.b64encode(tok).decode() + f" {rank}" for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1])]
    Path(path).write_text("\n".join(lines) + "\n")


@dataclass(frozen=True)
class MergeStep:
    """One state of a piece during BPE: its parts, and which merge (rank, index of the left part) made it."""

    parts: tuple[bytes, ...]
    rank: int | None = None  # None for the starting state (single bytes)
    at: int | None = None


def replay_merges(parts: list[bytes], pair_rank: Callable[[bytes, bytes], int | None]) -> list[MergeStep]:
    """BPE from the given parts: repeatedly join the adjacent pair with the lowest rank (leftmost on a tie) until no
    pair has one. Every state is kept, so a learner can step through it."""
    steps = [MergeStep(tuple(parts))]
    while len(parts) > 1:
        ranked = [(pair_rank(parts[i], parts[i + 1]), i) for i in range(len(parts) - 1)]
        ranked = [(r, i) for r, i in ranked if r is not None]
        if not ranked:
            break
        rank, i = min(ranked)
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
        steps.append(MergeStep(tuple(parts), rank, i))
    return steps


class Tokenizer:
    """A tiktoken Encoding plus the per-token views a learner needs.

    Lookups (a token's bytes, a byte string's rank) go to tiktoken itself: no Python copy of the vocabulary is
    kept, which saves ~80 MB with o200k_base loaded."""

    kind = "bpe"  # what the tokenizer page can replay: "bpe" (merges) or "wordpiece"
    chat_template: str | None = None

    def __init__(self, name: str, ranks: dict[bytes, int], pattern: str, special_tokens: dict[str, int]):
        self.name = name
        self.pattern = pattern
        self.special_tokens = dict(special_tokens)
        self.encoding = tiktoken.Encoding(
            name=name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=self.special_tokens
        )
        self._regex = regex.compile(pattern)
        self._special_ids = frozenset(self.special_tokens.values())

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r}, n_vocab={self.n_vocab})"

    @property
    def n_vocab(self) -> int:
        return self.encoding.n_vocab

    @property
    def eot_id(self) -> int | None:
        return self.special_tokens.get(ENDOFTEXT)

    def encode(self, text: str) -> list[int]:
        """Text → ids. Special-token spellings typed by a user are encoded as ordinary text."""
        return self.encoding.encode(scalar_text(text), allowed_special=set(), disallowed_special=())

    def encode_with_special(self, text: str) -> list[int]:
        """Text the app writes itself (a chat template): special-token spellings become the special tokens."""
        return self.encoding.encode(scalar_text(text), allowed_special="all")

    def char_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character span in `text` of each token of `encode(text)`; a token holding part of a
        character spans that whole character. ValueError when the tokens do not spell the text byte for byte."""
        char_of_byte = [i for i, ch in enumerate(text) for _ in ch.encode("utf-8", "surrogatepass")]
        spans, at = [], 0
        for token_id in self.encode(text):
            end = at + len(self.token_bytes(token_id))
            if end > len(char_of_byte):
                raise ValueError("the tokens do not spell this text byte for byte")
            spans.append((char_of_byte[at], char_of_byte[end - 1] + 1))
            at = end
        return spans

    def encode_fragment(self, text: str) -> list[int]:
        """A word or phrase on its own, without the markers some tokenizers put around a whole input."""
        return self.encode(text)

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids, errors="replace")

    def rank(self, token: bytes) -> int | None:
        """The merge rank (= id) of a byte string that is an ordinary token, else None."""
        try:
            rank = self.encoding.encode_single_token(token)
        except KeyError:
            return None
        return None if rank in self._special_ids else rank

    def id_of(self, token: bytes) -> int:
        rank = self.rank(token)
        if rank is None:
            raise KeyError(token)
        return rank

    def token_bytes(self, token_id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(token_id)

    def display(self, token_id: int) -> str:
        """A token's text; bytes that are only part of a UTF-8 character show as \\xNN escapes."""
        return self.token_bytes(token_id).decode("utf-8", errors="backslashreplace")

    def pieces(self, text: str) -> list[str]:
        """The pre-tokenizer's split: BPE never merges across these boundaries."""
        return [m.group(0) for m in self._regex.finditer(scalar_text(text))]

    def merge_replay(self, piece: str | bytes) -> list[MergeStep]:
        """Replay BPE on one piece: from single bytes, repeatedly merge the adjacent pair with the lowest rank.

        This is tiktoken's own algorithm, so the last step's parts are exactly the tokens `encode` gives.
        """
        data = scalar_text(piece).encode() if isinstance(piece, str) else piece
        steps = replay_merges([bytes([b]) for b in data], lambda a, b: self.rank(a + b))
        parts = steps[-1].parts
        if len(parts) > 1 and self.rank(data) is not None:  # tiktoken takes a piece that is itself a token whole
            steps.append(MergeStep((data,), self.rank(data), 0))
        return steps

    def merge_replay_text(self, text: str) -> list[list[MergeStep]]:
        return [self.merge_replay(p) for p in self.pieces(text)]


def from_rank_file(
    path: str | Path,
    name: str | None = None,
    pattern: str = R50K_PATTERN,
    special_tokens: dict[str, int] | None = None,
    sha256: str | None = None,
) -> Tokenizer:
    """A model's own byte-level BPE: a rank file plus its pre-tokenizer pattern and special tokens."""
    ranks = read_ranks(path, sha256)
    if special_tokens is None:
        special_tokens = {ENDOFTEXT: len(ranks)}
    return Tokenizer(name or Path(path).stem, ranks, PATTERNS.get(pattern, pattern), special_tokens)


@lru_cache(maxsize=8)
def load_tokenizer(name: str = "gpt2") -> Tokenizer:
    """"gpt2" (= "r50k_base"), "cl100k_base" or "o200k_base", from the rank files in assets/tokenizers/."""
    key = ALIASES.get(name, name)
    if key not in BUILTIN:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {sorted(BUILTIN) + sorted(ALIASES)}")
    filename, sha256, pattern, special = BUILTIN[key]
    path = TOKENIZER_DIR / filename
    if not path.exists():
        raise FileNotFoundError(f"missing rank file {filename} in assets/tokenizers/")
    return Tokenizer(key, read_ranks(path, sha256), pattern, special)


def bytes_without_token(tokenizer: Tokenizer | HFTokenizer) -> list[int]:
    """The bytes (of the 256 possible) that have no token of their own: a byte-level BPE's starting alphabet lacks
    them."""
    missing = []
    for b in range(256):
        try:
            tokenizer.id_of(bytes([b]))
        except KeyError:
            missing.append(b)
    return missing


NEVER_IN_UTF8 = frozenset([0xC0, 0xC1, *range(0xF5, 0x100)])  # bytes no valid UTF-8 text holds


def character_pieces(tokenizer, ids: list[int]) -> int:
    """How many of `ids` are pieces of a character written in several bytes (their bytes are no whole UTF-8
    characters; pages show them as \\xNN). Each distinct id is checked once."""
    counts = collections.Counter(ids)
    return sum(n for i, n in counts.items() if not _whole_characters(tokenizer.token_bytes(i)))


def _whole_characters(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def render_chat(template: str | None, messages: list[dict[str, str]], add_generation_prompt: bool = True,
                name: str = "this model") -> str:
    """A chat template (Jinja, as model files ship it) applied to messages. The template comes from a model repo:
    it is rendered in Jinja's sandbox, in a child process, within limits on time, memory and output size
    (core.loading.chat_template); TemplateRefused, naming `name`, when it is empty or breaks a limit."""
    from core.loading.chat_template import render

    return render(template, messages, add_generation_prompt, name)


class TokenizerFailed(ValueError):
    """A model's own tokenizer failed: its tokenizer.json cannot be read, or `tokenizers` panicked on a text (a
    Rust panic reaches Python as pyo3's PanicException, a BaseException that no `except Exception` catches)."""


def is_panic(err: BaseException) -> bool:
    """A Rust panic from a native library (`tokenizers`, `safetensors`): pyo3_runtime.PanicException."""
    return type(err).__name__ == "PanicException"


def _guarded(method):
    """An HFTokenizer method whose backend panic or bare Exception becomes TokenizerFailed naming the model."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except BaseException as err:
            if not is_panic(err) and type(err) is not Exception:  # tokenizers raises a bare Exception for bad input
                raise
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise TokenizerFailed(f"{self.name}'s tokenizer (its tokenizer.json) failed on this text: {first}. The "
                                  "repo's tokenizer is broken; pick another model.") from None

    return call


def byte_alphabet() -> dict[int, str]:
    """GPT-2's byte → printable character map: byte-level BPE vocabularies (tokenizer.json, GGUF) spell tokens in it."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


class HFTokenizer:
    """A `tokenizers.Tokenizer` behind the same interface as `Tokenizer`.

    kind "bpe": a byte-level BPE given as vocabulary + merges (merge_replay follows the merge list, which is the
    `tokenizers` algorithm). kind "wordpiece": BERT's greedy longest-match-first subwords (no merges to replay).
    kind "metaspace": SentencePiece-style BPE (Llama 2, TinyLlama): it merges characters, not bytes, writes a space
    as ▁ and falls back to <0xNN> byte tokens; its merges are not replayed here.
    """

    def __init__(self, name: str, backend, kind: str, merges: list[tuple[str, str]] | None = None,
                 chat_template: str | None = None):
        self.name, self.backend, self.kind, self.chat_template = name, backend, kind, chat_template
        self.backend.no_truncation()
        self.backend.no_padding()
        self.backend.encode_special_tokens = True  # typed "[SEP]" or "<|im_end|>" stays ordinary text
        vocab = backend.get_vocab(with_added_tokens=True)
        self.special_tokens = {t.content: i for i, t in backend.get_added_tokens_decoder().items() if t.special}
        self._special_ids = frozenset(self.special_tokens.values())
        self._n_vocab = max(vocab.values()) + 1
        self._special_re = regex.compile("|".join(map(regex.escape, sorted(self.special_tokens, key=len, reverse=True))))
        self._strings = {i: t for t, i in vocab.items()}
        self._from_char = {c: b for b, c in byte_alphabet().items()} if kind == "bpe" else None
        if kind == "metaspace":
            merges = []
        if kind == "bpe" and merges is None:  # read them back from the backend's own description
            listed = json.loads(backend.to_str())["model"]["merges"]
            merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1)) for m in listed]
        self.merges = merges or []

    def __repr__(self) -> str:
        return f"HFTokenizer({self.name!r}, {self.kind}, n_vocab={self.n_vocab})"

    # Byte views of the merges and the vocabulary, built on first use (0.7 s for SmolLM2; most pages never ask).
    @cached_property
    def _merge_rank(self) -> dict[tuple[bytes, bytes], int]:
        to_bytes = self._spelled_bytes
        return {(to_bytes(a), to_bytes(b)): r for r, (a, b) in enumerate(self.merges)}

    @cached_property
    def _ids(self) -> dict[bytes, int]:
        return {self._spelled_bytes(t): i for i, t in self._strings.items() if i not in self._special_ids}

    def _spelled_bytes(self, token: str) -> bytes:
        return bytes(self._from_char[c] for c in token)

    @property
    def n_vocab(self) -> int:
        return self._n_vocab

    @property
    def eot_id(self) -> int | None:
        return self.special_tokens.get(ENDOFTEXT)

    @_guarded
    def encode(self, text: str) -> list[int]:
        """Text → ids (BERT's [CLS] … [SEP] included). Special-token spellings typed by a user are ordinary text."""
        return self.backend.encode(scalar_text(text)).ids

    @_guarded
    def char_spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character span in `text` of each token of `encode(text)`; (0, 0) for [CLS], [SEP]."""
        return list(self.backend.encode(scalar_text(text)).offsets)

    @_guarded
    def encode_fragment(self, text: str) -> list[int]:
        """A word or phrase on its own, without BERT's [CLS] … [SEP] around it."""
        return self.backend.encode(scalar_text(text), add_special_tokens=False).ids

    @_guarded
    def encode_with_special(self, text: str) -> list[int]:
        text = scalar_text(text)
        ids, at = [], 0
        for m in self._special_re.finditer(text) if self.special_tokens else ():
            ids += self.backend.encode(text[at : m.start()], add_special_tokens=False).ids
            ids.append(self.special_tokens[m.group(0)])
            at = m.end()
        return ids + self.backend.encode(text[at:], add_special_tokens=False).ids

    @_guarded
    def decode(self, ids: list[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for; none for an id the vocabulary lacks (repos pad their embedding table to a
        round size, and a model may still give those rows a probability)."""
        token = self._strings.get(token_id)
        if token is None:
            return b""
        if self._from_char is not None and token_id not in self._special_ids:
            return self._spelled_bytes(token)
        if self.kind == "metaspace" and token_id not in self._special_ids:
            byte = BYTE_TOKEN.fullmatch(token)
            return bytes([int(byte.group(1), 16)]) if byte else token.replace("\u2581", " ").encode()
        return token.encode()

    def display(self, token_id: int) -> str:
        if token_id not in self._strings:
            return f"⟨unused id {token_id}⟩"
        return self.token_bytes(token_id).decode("utf-8", errors="backslashreplace")

    def id_of(self, token: bytes) -> int:
        return self._ids[token]

    @_guarded
    def pieces(self, text: str) -> list[str]:
        """The pre-tokenizer's split (of the normalized text: BERT lowercases first)."""
        text = scalar_text(text)
        normalized = self.backend.normalizer.normalize_str(text) if self.backend.normalizer else text
        return [normalized[a:b] for _, (a, b) in self.backend.pre_tokenizer.pre_tokenize_str(normalized)]

    def merge_replay(self, piece: str | bytes) -> list[MergeStep]:
        """Replay BPE on one piece: from single bytes, repeatedly merge the adjacent pair that comes first in the
        merge list. Bytes the vocabulary lacks are dropped, as `tokenizers` does."""
        if not self._merge_rank:
            raise ValueError(f"{self.name} is a {self.kind} tokenizer: it has no merges to replay")
        data = scalar_text(piece).encode() if isinstance(piece, str) else piece
        return replay_merges([bytes([b]) for b in data if bytes([b]) in self._ids],
                             lambda a, b: self._merge_rank.get((a, b)))

    def merge_replay_text(self, text: str) -> list[list[MergeStep]]:
        return [self.merge_replay(p) for p in self.pieces(text)]


class WordTokenizer:
    """A closed vocabulary of whole words (core.seq2seq's translator): one token per word, lower-cased; a final
    full stop, question or exclamation mark is dropped; anything else the vocabulary lacks becomes <unk>, and
    `unknown(text)` names it. `source_words` are the words the model was trained to read (English), a subset of
    the vocabulary, which also holds the words it writes (French)."""

    kind = "words"
    chat_template = None
    merges: list = []

    def __init__(self, name: str, tokens: list[str], source_words: list[str], unk: str = UNK):
        self.name, self.tokens, self.source_words = name, list(tokens), frozenset(source_words)
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        if len(self._ids) != len(self.tokens) or unk not in self._ids or not self.source_words <= set(self._ids):
            raise ValueError(f"{name}: a word vocabulary needs distinct tokens, {unk!r}, and its source words")
        self.unk_id = self._ids[unk]
        self.special_tokens = {t: i for t, i in self._ids.items() if t.startswith("<") and t.endswith(">")}

    @classmethod
    def from_file(cls, path: str | Path, name: str) -> WordTokenizer:
        check_asset(path)
        try:
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(name, spec["tokens"], spec["source_words"])
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path} is not a word vocabulary ({err!r})") from None

    def __repr__(self) -> str:
        return f"WordTokenizer({self.name!r}, n_vocab={self.n_vocab})"

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    @property
    def eot_id(self) -> int | None:
        return None

    def _matches(self, text: str) -> list:
        text = scalar_text(text)
        found = list(WORD.finditer(text))
        while found and found[-1].group(0) in ".!?":
            found.pop()
        return found

    def pieces(self, text: str) -> list[str]:
        """The words of `text`, lower-cased, a final full stop (! ?) dropped."""
        return [m.group(0).lower() for m in self._matches(text)]

    def unknown(self, text: str, source: bool = True) -> list[str]:
        """The words of `text` the model cannot read (source=True: not among the words it was trained to read)."""
        known = self.source_words if source else self._ids
        return list(dict.fromkeys(w for w in self.pieces(text) if w not in known))

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(w, self.unk_id) for w in self.pieces(text)]

    encode_fragment = encode_with_special = encode

    def char_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self._matches(text)]

    def decode(self, ids: list[int]) -> str:
        """Words joined by spaces, none after an elided "l'" or "n'"."""
        out = ""
        for i in ids:
            word = self.tokens[i]
            out += word if not out or out.endswith("'") else " " + word
        return out

    def token_bytes(self, token_id: int) -> bytes:
        return self.tokens[token_id].encode()

    def display(self, token_id: int) -> str:
        return self.tokens[token_id]

    def id_of(self, token: bytes | str) -> int:
        return self._ids[token.decode() if isinstance(token, bytes) else token]

    def merge_replay(self, piece: str | bytes) -> list[MergeStep]:
        raise ValueError(f"{self.name} has a word vocabulary: it has no merges to replay")

    def merge_replay_text(self, text: str) -> list[list[MergeStep]]:
        return [self.merge_replay(p) for p in self.pieces(text)]


WORD = regex.compile(r"\p{L}+'(?!\p{L})|\p{L}+(?:'\p{L}+)?|\S")  # a word ("doesn't" is one), an elided "l'", or one symbol


def token_ids(model, text_or_ids: str | Iterable[int]) -> list[int]:
    """A text through the model's tokenizer, or token ids checked against its vocabulary (a clear ValueError)."""
    if isinstance(text_or_ids, str):
        if model.tokenizer is None:
            raise ValueError("this model has no tokenizer: pass a list of token ids")
        return model.tokenizer.encode(text_or_ids)
    ids = [int(i) for i in text_or_ids]
    bad = [i for i in ids if not 0 <= i < model.config.vocab_size]
    if bad:
        raise ValueError(f"token ids out of range 0..{model.config.vocab_size - 1}: {bad[:5]}")
    return ids
