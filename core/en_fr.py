"""English→French: the grammar and bilingual lexicon the shipped translator (core.seq2seq) was trained on.

The project writes its own parallel data: every English sentence of this small grammar has exactly one French
translation, computed here by rule. The rules are the teaching cases that make cross-attention cross:
- gender agreement: the → le/la, a → un/une, black → noir/noire, from the noun's gender;
- word order: size adjectives come before the noun (petite fille), colour adjectives after it (voiture rouge);
- negation wraps the verb: "does not see" → "ne voit pas" (two English words → two French words around one);
- elision: le/la → l' and ne → n' before a vowel ("l'arbre", "n'aime"), but "le grand arbre".

Sentences: NP VERB NP, or NP does not / doesn't VERB NP, where NP = DET [SIZE] [COLOUR] NOUN. The required form of
the issue that asked for this model, `DET [ADJ] NOUN VERB DET [ADJ] NOUN`, is `Sentence.basic`.

Held-out combinations: some adjective–noun pairs and some subject–object pairs never occur in a training sentence
(anywhere). The test sentences are the ones that contain them, so the model card's scores are on combinations the
model never saw, not merely on rows it did not see.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from math import exp, log

from core.tokenizer import BOS, EOS, UNK

DETS = {"the": ("le", "la"), "a": ("un", "une")}
NOUNS = {  # English: (French, gender)
    "cat": ("chat", "m"), "dog": ("chien", "m"), "boy": ("garçon", "m"), "book": ("livre", "m"),
    "car": ("voiture", "f"), "house": ("maison", "f"), "girl": ("fille", "f"), "apple": ("pomme", "f"),
    "table": ("table", "f"), "mouse": ("souris", "f"),
    "bird": ("oiseau", "m"), "tree": ("arbre", "m"),  # vowels: l'oiseau, l'arbre (but "le grand arbre")
}
SIZE = {"big": ("grand", "grande"), "small": ("petit", "petite")}  # before the noun in French
COLOUR = {"red": ("rouge", "rouge"), "black": ("noir", "noire"), "green": ("vert", "verte")}  # after the noun
VERBS = {"sees": ("see", "voit"), "eats": ("eat", "mange"), "likes": ("like", "aime"), "finds": ("find", "trouve")}
NEGATIONS = (("does", "not"), ("doesn't",))

# Never in a training sentence: the test sentences are made of these.
HELD_OUT_PAIRS = frozenset({  # (adjective, noun)
    ("black", "car"), ("green", "house"), ("red", "apple"), ("black", "dog"),
    ("small", "mouse"), ("big", "girl"), ("small", "tree"), ("green", "book"),
})
HELD_OUT_ROLES = frozenset({  # (subject noun, object noun)
    ("dog", "cat"), ("girl", "book"), ("mouse", "apple"), ("car", "house"), ("boy", "tree"), ("bird", "table"),
})
REQUIRED_NOUNS = ("cat", "dog", "boy", "book", "car", "house", "girl", "apple", "table", "mouse")


def _vowel(word: str) -> bool:
    return word[0] in "aeiouéèê"


@dataclass(frozen=True)
class NounPhrase:
    det: str
    noun: str
    size: str | None = None
    colour: str | None = None

    @property
    def english(self) -> list[str]:
        return [self.det, *([self.size] if self.size else []), *([self.colour] if self.colour else []), self.noun]

    @property
    def french(self) -> list[str]:
        noun, gender = NOUNS[self.noun]
        g = 0 if gender == "m" else 1
        size = [SIZE[self.size][g]] if self.size else []
        det = DETS[self.det][g]
        if self.det == "the" and not size and _vowel(noun):
            det = "l'"
        return [det, *size, noun, *([COLOUR[self.colour][g]] if self.colour else [])]

    @property
    def pairs(self) -> set[tuple[str, str]]:
        return {(a, self.noun) for a in (self.size, self.colour) if a}


@dataclass(frozen=True)
class Sentence:
    subject: NounPhrase
    verb: str  # the English third-person form: "sees"
    obj: NounPhrase
    negation: tuple[str, ...] = ()  # (), ("does", "not") or ("doesn't",)

    @property
    def english(self) -> list[str]:
        verb = [*self.negation, VERBS[self.verb][0]] if self.negation else [self.verb]
        return [*self.subject.english, *verb, *self.obj.english]

    @property
    def french(self) -> list[str]:
        verb = VERBS[self.verb][1]
        middle = [("n'" if _vowel(verb) else "ne"), verb, "pas"] if self.negation else [verb]
        return [*self.subject.french, *middle, *self.obj.french]

    @property
    def basic(self) -> bool:
        """The form `DET [ADJ] NOUN VERB DET [ADJ] NOUN` over the required lexicon: no negation, ≤ 1 adjective each."""
        return (not self.negation and all(not (np.size and np.colour) for np in (self.subject, self.obj))
                and self.subject.noun in REQUIRED_NOUNS and self.obj.noun in REQUIRED_NOUNS)

    @property
    def held_out(self) -> bool:
        """Holds a combination no training sentence has."""
        return bool((self.subject.pairs | self.obj.pairs) & HELD_OUT_PAIRS) or \
            (self.subject.noun, self.obj.noun) in HELD_OUT_ROLES

    @property
    def form(self) -> str:
        if self.basic:
            return "DET [ADJ] NOUN VERB DET [ADJ] NOUN"
        return "negation" if self.negation else "two adjectives or the extra nouns"


def other_gender(french: str) -> str | None:
    """The same word of the other gender (la → le, petite → petit, noire → noir), None when it has none."""
    for masculine, feminine in [*DETS.values(), *SIZE.values(), *COLOUR.values(), ("l'", "la")]:
        if masculine != feminine and french in (masculine, feminine):
            return feminine if french == masculine else masculine
    return None


def english_words() -> list[str]:
    words = [*DETS, *SIZE, *COLOUR, *NOUNS, *VERBS, *(base for base, _ in VERBS.values())]
    return words + sorted({w for n in NEGATIONS for w in n})


def french_words() -> list[str]:
    words = {w for pair in DETS.values() for w in pair} | {"l'", "ne", "n'", "pas"}
    words |= {w for pair in (*SIZE.values(), *COLOUR.values()) for w in pair}
    return sorted(words | {f for f, _ in NOUNS.values()} | {f for _, f in VERBS.values()})


def vocabulary() -> list[str]:
    """The translator's word vocabulary: specials, then English, then French (a word both languages share, such as
    "table", is one token)."""
    seen: dict[str, None] = dict.fromkeys([BOS, EOS, UNK, *english_words(), *french_words()])
    return list(seen)


def _noun_phrase(rng: random.Random, nouns: tuple[str, ...]) -> NounPhrase:
    shape = rng.random()
    size = rng.choice(list(SIZE)) if shape > 0.55 or 0.25 < shape < 0.4 else None
    colour = rng.choice(list(COLOUR)) if shape > 0.4 else None
    return NounPhrase(rng.choice(list(DETS)), rng.choice(nouns), size, colour)


def sample(rng: random.Random, basic: bool = False) -> Sentence:
    """A random sentence of the grammar (basic: of the required form only)."""
    nouns = REQUIRED_NOUNS if basic else tuple(NOUNS)
    while True:
        s = Sentence(_noun_phrase(rng, nouns), rng.choice(list(VERBS)), _noun_phrase(rng, nouns),
                     () if basic or rng.random() < 0.7 else rng.choice(NEGATIONS))
        if not basic or s.basic:
            return s


def training_sentence(rng: random.Random) -> Sentence:
    """A random sentence with no held-out combination."""
    while True:
        s = sample(rng)
        if not s.held_out:
            return s


def held_out_sentences(n: int, seed: int, basic: bool) -> list[Sentence]:
    """n distinct sentences that each hold a held-out combination (the test split)."""
    rng, found = random.Random(seed), {}
    while len(found) < n:
        s = sample(rng, basic)
        if s.held_out:
            found.setdefault(" ".join(s.english), s)
    return list(found.values())


def _parse_np(words: list[str], at: int) -> tuple[NounPhrase, int] | None:
    if at >= len(words) or words[at] not in DETS:
        return None
    det, at = words[at], at + 1
    size = words[at] if at < len(words) and words[at] in SIZE else None
    at += size is not None
    colour = words[at] if at < len(words) and words[at] in COLOUR else None
    at += colour is not None
    if at >= len(words) or words[at] not in NOUNS:
        return None
    return NounPhrase(det, words[at], size, colour), at + 1


def parse(words: list[str]) -> Sentence | None:
    """The grammar's analysis of lower-case English words, or None when they are not a sentence of it."""
    first = _parse_np(words, 0)
    if first is None:
        return None
    subject, at = first
    negation: tuple[str, ...] = ()
    for neg in NEGATIONS:
        if tuple(words[at : at + len(neg)]) == neg:
            negation, at = neg, at + len(neg)
            break
    if at >= len(words):
        return None
    verb = words[at] if not negation else next((v for v, (base, _) in VERBS.items() if base == words[at]), None)
    if verb not in VERBS:
        return None
    second = _parse_np(words, at + 1)
    if second is None or second[1] != len(words):
        return None
    return Sentence(subject, verb, second[0], negation)


def bleu(hypotheses: list[list[str]], references: list[list[str]], n: int = 4) -> float:
    """Corpus BLEU (Papineni et al. 2002): the geometric mean of clipped 1..n-gram precisions over the whole corpus,
    times the brevity penalty; one reference per sentence, on the given tokens, 0–100."""
    matched, total = [0] * n, [0] * n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references, strict=True):
        hyp_len, ref_len = hyp_len + len(hyp), ref_len + len(ref)
        for k in range(1, n + 1):
            h = Counter(tuple(hyp[i : i + k]) for i in range(len(hyp) - k + 1))
            r = Counter(tuple(ref[i : i + k]) for i in range(len(ref) - k + 1))
            matched[k - 1] += sum(min(c, r[g]) for g, c in h.items())
            total[k - 1] += max(len(hyp) - k + 1, 0)
    if min(matched) == 0:
        return 0.0
    log_precision = sum(log(m / t) for m, t in zip(matched, total)) / n
    brevity = 1.0 if hyp_len > ref_len else exp(1 - ref_len / max(hyp_len, 1))
    return 100 * brevity * exp(log_precision)
