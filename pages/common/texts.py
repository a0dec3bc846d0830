"""Explanation texts, 2–4 sentences per view, written to be true for the model that is loaded."""

from __future__ import annotations

import math

from core.config import ModelConfig


def tokenizer(cfg: ModelConfig, tok_name: str, kind: str = "bpe", digits_one_by_one: bool = False,
              single_bytes: int = 256) -> str:
    if kind == "wordpiece":
        return (
            f"A language model never sees letters: the tokenizer cuts your text into **tokens** and replaces each by "
            f"an integer ID between 0 and {cfg.vocab_size - 1}. This BERT-style model uses **WordPiece** "
            f"(`{tok_name}`): the text is lowercased and its accents are stripped (`Café` → `cafe`), split at "
            "spaces and punctuation, then each word is cut "
            "greedily into the longest pieces found in the vocabulary; a piece that continues a word starts with "
            "`##`. Two special tokens frame every input: `[CLS]` at the start and `[SEP]` at the end. Unlike byte-"
            "level BPE, a word holding a character the vocabulary lacks (many emoji) becomes one `[UNK]`."
        )
    start = ("the 256 possible bytes" if single_bytes == 256 else
             f"single bytes — {single_bytes} of the 256 possible ones have a token; the other {256 - single_bytes} "
             "never appeared on their own in its training text")
    digits = (" Digits are always split one by one (`2024` → `2`,`0`,`2`,`4`), a choice some model makers make to "
              "help arithmetic." if digits_one_by_one else "")
    return (
        f"A language model never sees letters: the tokenizer cuts your text into **tokens** and replaces each by an "
        f"integer ID between 0 and {cfg.vocab_size - 1}. This model uses a byte-level **BPE** vocabulary "
        f"(`{tok_name}`): it starts from {start} and learned, from its training text, which adjacent "
        "pairs to merge into bigger tokens — frequent words become one token, rare ones split into pieces. "
        "Spaces belong to the token after them, which is why `·the` (with its space, shown as ·) and `the` are different tokens." + digits
    )


def embeddings(cfg: ModelConfig) -> str:
    return (
        f"Each token ID selects one row of the **embedding matrix** ({cfg.vocab_size} rows × {cfg.d_model} numbers). "
        "These rows are not given in advance: they start random and are learned during training, together with "
        "every other weight, so tokens used in similar ways end up with similar vectors. After the embedding, each "
        "layer adds to the token's vector, so the same word gets a different, *contextual* vector in each sentence."
    )


ORDER = ("Attention by itself treats the tokens as a set: nothing in q·k says which token came where (a decoder's "
         "causal mask adds a little order — a token sees only earlier ones — but not how far apart they are), so the "
         "model is told where each token is.")
FAMILY = {"gpt2": "GPT-2", "bert": "BERT", "llama": "Llama"}


def positions(cfg: ModelConfig) -> str:
    like = f" (like {FAMILY[cfg.family]})" if cfg.family in FAMILY else ""
    if cfg.positional == "learned":
        segment = " and its segment vector" if cfg.n_token_types else ""
        return (
            f"{ORDER} This model{like} **learns** a position table: one vector per position 0…{cfg.n_ctx - 1}, "
            f"trained like the embeddings and added to the token's embedding{segment} before the first layer. The "
            "heatmap below is that table as it was learned; the sinusoidal pattern further down is the original "
            "paper's fixed formula, shown for comparison — it is not what this model uses."
        )
    if cfg.positional == "rope":
        return (
            f"{ORDER} This model{like} uses **rotary position embeddings (RoPE)**: nothing is added to the "
            "embeddings; instead each query and key vector is rotated, pair of dimensions by pair, by an angle "
            "proportional to its position. In q·k the two rotations combine into one rotation by the *distance* "
            "between the two tokens, so the position part of every score depends only on how far apart they are — "
            "what q and k hold still depends on the tokens themselves. The sinusoidal table below is the original "
            "paper's scheme, shown for comparison."
        )
    return (
        f"{ORDER} This model uses the original transformer paper's **sinusoidal** positions: a fixed (not "
        "learned) table of sines and cosines of different frequencies, added to the token embeddings before the first "
        "layer."
    )


def byte_cluster(cfg: ModelConfig, n: int, cohesion: float) -> str:
    tied = (" With a tied unembedding, every training step also pushes tokens that are never the answer to be less "
            "likely — all in nearly the same direction — so they end up together, away from the tokens in use."
            if cfg.tied_embeddings else "")
    return (f"A tight knot of points: the {n} single bytes 0x80–0xFF (pieces of characters outside ASCII: é, €, 😀 "
            f"are 2–4 of them), which this model's training text hardly used. Their rows are nearly parallel (mean "
            f"cosine {cohesion:.2f}, measured now).{tied}")


def word_in_contexts(cfg: ModelConfig, name: str, word: str, found) -> str:
    """What the same-word curve shows, for this model and these two sentences (`found`: core.analysis's
    WordInContexts)."""
    n_pieces = len(found.positions_a)
    pieces = f" “{word}” is {n_pieces} tokens here: the curve follows its last one." if n_pieces > 1 else ""
    same_place = found.positions_a[-1] == found.positions_b[-1]
    start = ("Both start as the same embedding row — RoPE adds no position vector; positions act inside attention."
             if cfg.positional == "rope" else
             "Both start as the same embedding row plus the position vector of where the word stands" +
             (" — the same position here, so the inputs are identical." if same_place else
              " — different positions here, so the inputs already differ a little."))
    low = float(found.cosine.min())
    if cfg.causal and found.same_prefix:
        what = (f"Everything up to “{word}” is the same in A and B, and a decoder's token sees only the tokens before "
                f"it: its vectors stay identical at every layer (lowest cosine {low:.4f}). The words that tell the two "
                "meanings apart come after it, where a decoder cannot look — an encoder can.")
    elif cfg.causal:
        what = (f"Each layer mixes in the earlier words through attention, so the two vectors drift apart (lowest "
                f"cosine {low:.4f}): only words *before* “{word}” can do this in a decoder.")
    else:
        what = (f"Each layer mixes in the words on both sides, so the vectors drift apart (lowest cosine {low:.4f}) — "
                "words after the word count too: this is an encoder.")
    return f"**{name}:** {start}{pieces} {what}"


def bert_positions(odd: list[tuple[int, float]], median: float) -> str:
    """The rows of a BERT-style position table least like their neighbours, measured, and the likely reason."""
    rows = " and ".join(f"{p} (cosine to its neighbours {c:.2f})" for p, c in sorted(odd))
    why = []
    if any(p == 0 for p, _ in odd):
        why.append("position 0 always held [CLS]")
    if any(p == 127 for p, _ in odd):
        why.append("BERT-style models train mostly on sequences of at most 128 tokens, whose last slot (127) "
                   "usually held [SEP]")
    reason = (" Most likely the training slots: " + ", and ".join(why) + " — a row learned for one special token "
              "looks unlike its neighbours.") if why else ""
    return f" The rows least like their neighbours are positions {rows}, against {median:.2f} for a typical row.{reason}"


def rope_on_text(cfg: ModelConfig, pair: int, radians: float, n_tokens: int) -> str:
    half = cfg.head_dim // 2
    turns = radians * (n_tokens - 1) / (2 * math.pi)
    return (
        f"The model's own q and k for your text, in dimensions {pair} and {pair + half} of the {cfg.head_dim} of a "
        f"head: hollow as the projections made them, filled after RoPE turned them. The token at position p is "
        f"turned by p × {radians:.4g} rad ({math.degrees(radians):.3g}° per position; {turns:.3g} full turns over "
        "your text). In q·k the turns of a query and a key combine into one turn by their distance, so this pair "
        "adds |q|·|k|·cos(the angle between them before + distance × its speed): the same for any two tokens the "
        "same distance apart. Low pairs turn fast, high pairs hardly at all."
    )


def word_order(cfg: ModelConfig) -> str:
    kept = "The special tokens stay where they are" if not cfg.causal else \
        "The last token stays last (so the same word makes the prediction)"
    signal = {"learned": "no position vectors are added", "sinusoidal": "no position vectors are added",
              "rope": "q and k are not rotated"}[cfg.positional]
    return (
        f"The same tokens (word pieces too) in another order, seeded. {kept}; only the order of the others changes. "
        f"Then both orders run once more with the position signal removed ({signal}), the same weights otherwise: "
        "whatever still differs between the two orders must come from somewhere else."
    )


def word_order_result(cfg: ModelConfig, min_cosine_without: float) -> str:
    if not cfg.causal:
        return (
            f"Without positions every token ends with the same vector in both orders (lowest cosine "
            f"{min_cosine_without:.4f}): to this encoder the text is a bag of words, and the position vectors are its "
            "only source of word order."
        )
    return (
        "Without positions the two orders still give different vectors: the causal mask carries order by itself — "
        "each token sees only the tokens before it, a different set in each order. \"Without positions a "
        "transformer is a bag of words\" is true of an encoder, not of a decoder; what positions add here is how far "
        "apart tokens are."
    )


def attention(cfg: ModelConfig) -> str:
    if not cfg.causal:
        return (
            f"In each of the {cfg.n_layers} layers, {cfg.n_heads} attention heads decide, for every token, how much "
            "to look at every other token. A head turns each token into a query q, a key k and a value v; the "
            f"weights are softmax(q·k / √{cfg.head_dim}) over the keys, and the output is the weighted sum of the "
            "values. This is an **encoder** (BERT-style): nothing is masked, every token sees the words **before and "
            "after** it, so the whole square is filled. That suits understanding a finished sentence — it cannot "
            "generate text, because it would see the answer."
        )
    gqa = (
        f" Its {cfg.n_heads} query heads share {cfg.kv_heads} key/value heads (grouped-query attention): each k and v "
        f"serves {cfg.group_size} query heads."
        if cfg.kv_heads != cfg.n_heads
        else ""
    )
    rope = " q and k are shown after their RoPE rotation, as the model uses them." if cfg.positional == "rope" else ""
    style = FAMILY.get(cfg.family, cfg.family)
    return (
        f"In each of the {cfg.n_layers} layers, {cfg.n_heads} attention heads decide, for every token, how much to "
        "look at every other token. A head turns each token into a query q, a key k and a value v; the weights are "
        f"softmax(q·k / √{cfg.head_dim}) over the keys, and the output is the weighted sum of the values. This is a "
        f"decoder ({style}-style) model, so a token may only look at itself and tokens **before** it: the future is "
        "masked, which is why the upper triangle is drawn in pale yellow: those cells get no weight at all." + gqa
        + rope
    )


def no_next_token(cfg: ModelConfig, decoders: list[str]) -> str:
    return (
        f"**{cfg.name} has no next token to show.** It is an *encoder* (BERT-style): its attention is bidirectional, "
        "so while reading a word it also sees every word after it — a next-word guess would be cheating. Encoders "
        "are trained to fill in hidden words instead (BERT) or to turn sentences into vectors for search (MiniLM), "
        "and this one has no language-model head: no unembedding matrix, so no logits and no softmax over a "
        "vocabulary. Its tokens, embeddings, positions and attention are on the other pages; pick a decoder "
        f"({', '.join(decoders)}) in the sidebar to see next-token probabilities."
    )


def next_token(cfg: ModelConfig) -> str:
    return (
        f"After the last layer, the final vector of the last token is multiplied by the unembedding matrix, giving "
        f"one score (**logit**) for each of the {cfg.vocab_size} tokens; softmax turns the scores into probabilities "
        "that sum to 1. Generation picks one token from this distribution, appends it and repeats. Temperature "
        "divides the logits (below 1 sharpens, above 1 flattens), top-k keeps the k most likely tokens and top-p "
        "keeps the smallest set whose probabilities reach p."
    )


def training(waves: bool = False) -> str:
    start = "random weights (its position table from cos/sin waves)" if waves else "random weights"
    return (
        f"The embedded model started from {start} and learned by predicting the next token of children's "
        "stories, over and over, nudging every weight to make the right token more likely (pretraining). The loss is "
        "the average −log p of the correct next token: it falls as the model learns. The validation loss is measured "
        "on stories the model never trained on; if it rose while training loss fell, the model would be memorising."
    )
