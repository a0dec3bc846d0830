"""Explanation texts, 2–4 sentences per view, written to be true for the model that is loaded."""

from __future__ import annotations

import math

from core.config import ModelConfig
from core.parameters import breakdown
from core.tokenizer import NEVER_IN_UTF8


def tokenizer(cfg: ModelConfig, tok_name: str, kind: str = "bpe", digits_one_by_one: bool = False,
              missing_bytes: list[int] | tuple[int, ...] = ()) -> str:
    if kind == "metaspace":
        return (
            f"A language model never sees letters: the tokenizer cuts your text into **tokens** and replaces each by "
            f"an integer ID between 0 and {cfg.vocab_size - 1:,}. This model uses a SentencePiece-style **BPE** "
            f"(`{tok_name}`): it learned which adjacent characters to merge, writes a space as `▁`, and spells a "
            "character missing from its vocabulary as its UTF-8 bytes (`<0xE2>` …)."
        )
    if kind == "wordpiece":
        return (
            f"A language model never sees letters: the tokenizer cuts your text into **tokens** and replaces each by "
            f"an integer ID between 0 and {cfg.vocab_size - 1:,}. This BERT-style model uses **WordPiece** "
            f"(`{tok_name}`): the text is lowercased and its accents are stripped (`Café` → `cafe`), split at "
            "spaces and punctuation, then each word is cut "
            "greedily into the longest pieces found in the vocabulary; a piece that continues a word starts with "
            "`##`. Two special tokens frame every input: `[CLS]` at the start and `[SEP]` at the end. Unlike byte-"
            "level BPE, a word holding a character the vocabulary lacks (many emoji) becomes one `[UNK]`."
        )
    impossible = [b for b in missing_bytes if b in NEVER_IN_UTF8]
    start = ("the 256 possible bytes" if not missing_bytes else
             f"single bytes: {256 - len(missing_bytes)} of the 256 possible ones have a token of their own, "
             f"{len(missing_bytes)} do not" + (f" ({len(impossible)} of those, such as "
                                               f"{', '.join(f'{b:02X}' for b in impossible[:3])}, never occur in UTF-8 "
                                               "text)" if impossible else ""))
    digits = (" Digits are always split one by one (`2024` → `2`,`0`,`2`,`4`), a choice some model makers make to "
              "help arithmetic." if digits_one_by_one else "")
    return (
        f"A language model never sees letters: the tokenizer cuts your text into **tokens** and replaces each by an "
        f"integer ID between 0 and {cfg.vocab_size - 1:,}. This model uses a byte-level **BPE** vocabulary "
        f"(`{tok_name}`): it starts from {start}. From its training text it learned which adjacent "
        "pairs to merge into bigger tokens — frequent words become one token, rare ones split into pieces. "
        "Spaces belong to the token after them, which is why `·the` (with its space, shown as ·) and `the` are different tokens." + digits
    )


def embeddings(cfg: ModelConfig) -> str:
    return (
        f"Each token ID selects one row of the **embedding matrix** ({cfg.vocab_size:,} rows × {cfg.d_model} numbers). "
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
    if cfg.encoder_decoder:
        return (
            f"{ORDER} This model is the original paper's encoder–decoder and uses its **sinusoidal** positions: a "
            "fixed (not learned) table of sines and cosines of different frequencies, added to the word embeddings "
            "(scaled by √d_model first, as in the paper) before the first encoder block and, counted again from 0 "
            "for the French words, before the first decoder block. The table below is the one it adds. (This "
            "page's word-order experiment needs a model that reads one text, so it is left out; the Translation page "
            "shows this one at work.)"
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
    """What the same-word curve shows, for this model and these two sentences (`found`: core.interpret's
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
        f"one score (**logit**) for each of the {cfg.vocab_size:,} tokens; softmax turns the scores into probabilities "
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


NORM = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm"}
A_NORM = {"layernorm": "a LayerNorm", "rmsnorm": "an RMSNorm"}  # with its article: "an" before a vowel sound


def _positions_added(cfg: ModelConfig) -> str:
    if cfg.positional == "rope":
        return ("Nothing is added for position: this model uses **RoPE**, which rotates each head's queries and keys "
                "inside attention by an angle that grows with the position.")
    added = (f"a learned position vector (one of {cfg.n_ctx:,} rows, trained like the rest)"
             if cfg.positional == "learned" else "a fixed sin/cos position vector (the original paper's table)")
    segment = " and a segment vector (sentence A)" if cfg.n_token_types else ""
    normed = f", and the sum goes through {A_NORM[cfg.norm]}" if cfg.post_norm else ""
    return f"The model adds {added}{segment} to each token's vector{normed}."


def stage(cfg: ModelConfig, name: str) -> str:
    """One or two sentences on one stage of the forward pass, true for this model's configuration."""
    norm = NORM[cfg.norm]
    if name == "tokens":
        return ("The tokenizer cuts the text into tokens and gives each its integer id; the model sees only the ids.")
    if name == "embed":
        return (f"Each id picks one row of the token-embedding table ({cfg.vocab_size:,} rows × {cfg.d_model} "
                "numbers): the token's vector. " + _positions_added(cfg))
    if name == "block":
        return block(cfg)
    if name == "final_norm":
        return (f"One last {norm} rescales the last block's output before the unembedding (the blocks' own norms "
                "only normalised what attention and the feed-forward layer read).")
    if name == "unembed":
        tied = ("It is the token-embedding table itself, reused (tied weights): a token's logit is the dot product "
                "of the final vector with that token's embedding row." if cfg.tied_embeddings else
                "It is a separate learned matrix (not tied to the embedding table).")
        return f"The unembedding turns the final vector into one score (logit) per token: {cfg.vocab_size:,} logits. " \
            + tied
    if name == "softmax":
        return ("Softmax turns the logits into probabilities that sum to 1; generation draws the next token from "
                "them (or takes the most likely one).")
    raise ValueError(name)


def block(cfg: ModelConfig) -> str:
    ffn = (f"SwiGLU feed-forward layer ({cfg.d_model} → 2 × {cfg.mlp_dim} → {cfg.d_model})" if cfg.mlp == "swiglu"
           else f"feed-forward layer ({cfg.d_model} → {cfg.mlp_dim} → {cfg.d_model}, GELU)")
    heads = f"{cfg.n_heads} attention heads" + (
        f" (sharing {cfg.kv_heads} key/value heads)" if cfg.kv_heads != cfg.n_heads else "")
    if cfg.post_norm:
        return (f"Each of the {cfg.n_layers} blocks: {heads} read the stream, their output is **added** to it and the "
                f"sum is normalised ({NORM[cfg.norm]} after the add, BERT's post-norm order); then the {ffn} reads "
                "it, its output is added and the sum normalised again. Every token sees every other token.")
    see = "itself and earlier tokens only (causal mask)" if cfg.causal else "every token"
    return (f"Each of the {cfg.n_layers} blocks: {A_NORM[cfg.norm]} feeds {heads}, which let each token read "
            f"{see}; their output is **added** to the residual stream. Then another {NORM[cfg.norm]} feeds the "
            f"{ffn}, which works on each token alone, and its output is added too. Nothing is replaced: each "
            "block adds to the stream.")


def no_unembedding(cfg: ModelConfig, where: str = " shown above") -> str:
    return (f"**{cfg.name} stops after its last block.** It is an encoder and this checkpoint has no "
            "language-model head: no unembedding matrix, so no logits and no softmax over a vocabulary. It was "
            "trained to produce vectors (averaged over the tokens, they are a sentence embedding for search and "
            f"similarity), so its output is the last block's vectors{where}.")


def feed_forward(cfg: ModelConfig) -> str:
    if cfg.mlp == "swiglu":
        inner = (f"two projections from {cfg.d_model} to {cfg.mlp_dim} numbers, a **gate** and an **up** branch; "
                 "the gate goes through SiLU (x·sigmoid(x)) and multiplies the up branch, unit by unit (SwiGLU); a "
                 f"down-projection brings the {cfg.mlp_dim} products back to {cfg.d_model}")
    else:
        act = "GELU (tanh approximation, as GPT-2)" if cfg.mlp == "gelu" else "GELU (exact erf form, as BERT)"
        inner = (f"an up-projection from {cfg.d_model} to {cfg.mlp_dim} numbers (hidden units, or 'neurons'), "
                 f"the {act} activation on each, and a down-projection back to {cfg.d_model}")
    add = ("its output is added to the residual stream and the sum normalised (post-norm)" if cfg.post_norm
           else "its output is added to the residual stream")
    vocab = (", not scores over the vocabulary: those come only once, after the last block." if cfg.lm_head else
             ".")
    return (f"After attention, every block has a feed-forward layer (MLP): {inner}; {add}. Its output is a vector "
            f"of {cfg.d_model} numbers like its input{vocab} It works on **each "
            "token on its own** — no token sees another here (that was attention's job). With "
            f"{3 if cfg.mlp == 'swiglu' else 2} weight matrices it holds {mlp_share(cfg):.0%} of each block's "
            "parameters, and studies of trained models find much of what they know about words and facts stored "
            "in these layers (Geva et al. 2021, Meng et al. 2022).")


def mlp_share(cfg: ModelConfig) -> float:
    """The feed-forward layer's share of one block's parameters."""
    rows = [r for r in breakdown(cfg) if r.per_block]
    return next(r.count for r in rows if r.component.startswith("feed-forward")) / sum(r.count for r in rows)


def attribution(cfg: ModelConfig) -> str:
    norm = NORM[cfg.norm]
    centre = "centred and " if cfg.norm == "layernorm" else ""
    return (
        "Every block **adds** to the residual stream, so the last token's final vector is a sum: the embedding"
        f"{'' if cfg.positional == 'rope' else ' + the position vector'} + what every attention layer added + what "
        f"every feed-forward layer added. The final {norm} is a division by one number (its scale, measured on that "
        f"sum) followed by the learned gain, so once the scale is fixed each part can be {centre}sent through the "
        "unembedding on its own: its **direct** share of the token's logit. The shares add up exactly to the logit. "
        "Direct only: a part that changes what later layers do gets the credit for that in those layers, not here."
    )


def layer_norm(cfg: ModelConfig) -> str:
    if cfg.norm == "rmsnorm":
        return ("**RMSNorm** divides the vector by its root-mean-square √(mean(x²) + ε), so its typical entry has size "
                f"1, then multiplies each of the {cfg.d_model} numbers by a learned gain. Unlike LayerNorm it does "
                "not subtract the mean and has no bias.")
    bias = " and adds a learned bias" if cfg.bias else ""
    return ("**LayerNorm** subtracts the vector's mean and divides by its standard deviation √(var + ε), so the "
            f"{cfg.d_model} numbers have mean 0 and spread 1, then multiplies each by a learned gain{bias}. It acts on "
            "each token's vector alone, not across tokens.")


def seq2seq_intro(cfg: ModelConfig, n_words: int) -> str:
    return (
        "The architecture of *Attention Is All You Need* (2017), at toy size and trained by this project on "
        f"sentences it generates over {n_words} English words (`tools/train_translator.py`). An **encoder** of "
        f"{cfg.n_layers} blocks reads the whole English sentence at once: every word may attend to every other. A "
        f"**decoder** of {cfg.n_decoder_layers} blocks writes the French one word at a time. Each decoder block has "
        "three sublayers: **masked self-attention** over the French words written so far, **cross-attention** — "
        "queries from the decoder, keys and values from the encoder's FINAL output, the same for every decoder "
        "block — and a feed-forward layer, each followed by Add & Norm (the paper's order: norm after the residual "
        "add). Both stacks add the paper's sinusoidal positions to their word embeddings, each counting from 0.\n\n"
        f"Sizes: {cfg.n_heads} heads per attention, d_model {cfg.d_model}, feed-forward {cfg.mlp_dim} "
        f"(ReLU), at most {cfg.n_ctx} tokens per side, one embedding matrix for English words, French words and the "
        "output layer, as in the paper. The paper's base model: 6 + 6 blocks, 8 heads, d_model 512, feed-forward "
        "2,048, beam search of size 4; this page decodes greedily (the most likely word each time)."
    )


def seq2seq_step(cfg: ModelConfig) -> str:
    return (
        "At each step the decoder is fed `<s>` and the words it has written so far; its last position's vector, "
        f"multiplied by the embedding matrix, scores all {cfg.vocab_size:,} words of the vocabulary (English ones "
        "too: nothing but training keeps it in French), and softmax turns the scores into probabilities. Greedy "
        "decoding takes the most likely word and feeds it back, until it writes `</s>`. The encoder ran once: every "
        "step reads the same encoder output."
    )


def cross_attention(cfg: ModelConfig) -> str:
    return (
        "A row is one decoder step: the word it was fed (left of the arrow) and the word it chose (right). The "
        "columns are the English tokens the encoder read, ending with `</s>`. The weights say where that step's "
        "queries looked in the **encoder's output**: after "
        f"{cfg.n_layers} blocks of attention over the whole sentence, the vector under an English word mostly, but "
        "not only, carries that word."
    )


def alignment(written: list[str], read: list[str], read_at: list[int], articles: set[str], nouns: set[str],
              which: str) -> str:
    """What this cross-attention map shows for this sentence: the English word each French word weighted most, the
    first crossing (a later French word reading an earlier English one), and an article reading its noun."""
    pairs = [(w, r, j) for w, r, j in zip(written, read, read_at) if w != "</s>"]
    text = f"Most weight per step ({which}): " + ", ".join(f"*{w}* ← “{r}”" for w, r, _ in pairs) + "."
    cross = next((t for t in range(1, len(pairs)) if pairs[t][2] < pairs[t - 1][2]), None)
    if cross is not None:
        (w0, r0, _), (w1, r1, _) = pairs[cross - 1], pairs[cross]
        text += (f" The alignment crosses: *{w0}* reads “{r0}”, then *{w1}* reads “{r1}”, which comes earlier in the "
                 "English — the two languages order these words differently.")
    else:
        text += " Here the steps read the English in order."
    agree = next(((w, r) for w, r, _ in pairs if w in articles and r in nouns), None)
    if agree:
        text += (f" Writing *{agree[0]}* it reads “{agree[1]}”: a French article's gender comes from its noun, which "
                 "the decoder has not written yet.")
    return text


def teacher_forcing() -> str:
    return (
        "**In training** the decoder is fed the correct French sentence shifted right by one (`<s>` la petite …) "
        "and predicts every next word in ONE pass: the causal mask lets position t see only the words before it, so "
        "that pass computes what writing word by word would, if every earlier word were right (teacher forcing). "
        "**At inference** there is no correct sentence: each step is fed the words the model wrote itself, one "
        "pass per word. When every word is right the two agree; when one is wrong, training would still feed the "
        "right one next, inference feeds the mistake."
    )


NOTES_CORRECTED = (
    ("“The desired output … is fed into our decoder block.”",
     "Only in training (teacher forcing). At inference the decoder is fed the words it wrote itself."),
    ("The decoder's masked attention hides information “to make the model learn”.",
     "The mask hides the words AFTER each position, so that training's all-at-once pass computes what writing "
     "word by word computes; without it a position could simply read the word it must predict."),
    ("Cross-attention “receives input from the multi-headed attention layer of the encoder block”.",
     "Its keys and values come from the encoder's final output (after all encoder blocks, feed-forward and norms "
     "included), the same for every decoder layer; its queries come from the decoder, after its masked "
     "self-attention and Add & Norm."),
    ("“Linear is a feed forward neural network” before the softmax.",
     "It is one matrix multiplication, no hidden layer: here the embedding matrix itself, shared as in the paper."),
    ("“Feed all words at once to the transformer model.”",
     "The encoder reads the source all at once; the decoder writes one word per step at inference (all positions "
     "at once only in training)."),
    ("Encoder and decoder “consist of many layers connected by … self-attention”.",
     "Layers are stacked one after another, joined by the residual stream; each CONTAINS self-attention and a "
     "feed-forward layer, and each decoder layer adds cross-attention."),
)


def faster(timing) -> str:
    """Which way of generating was faster in these runs (core.generate.CacheTiming), or that they cannot say."""
    if timing.within_noise:
        return "within noise"
    return "the cache" if timing.cached.median < timing.uncached.median else "recomputing"


def kv_saving(short, long) -> str:
    """What the timed runs say about the KV cache's saving and the prompt's length — from their speed-ups' ranges
    (core.generate.CacheTiming), never assumed."""
    figures_ = (f"{short.speedup.median:.1f}× at {short.n_prompt} tokens, {long.speedup.median:.1f}× at "
                f"{long.n_prompt}")
    if long.n_prompt <= short.n_prompt:
        return f"Speed-ups: {figures_}."
    if long.speedup.low > short.speedup.high:
        return (f"Here the saving grew with the length ({figures_}): each step without the cache re-reads the whole "
                "text, with the cache only the new token.")
    if short.speedup.low > long.speedup.high:
        return (f"Here the saving came out larger for the shorter text ({figures_}): on a busy computer a run can be "
                "slowed by other work; run it again later to compare.")
    return (f"These runs cannot tell the two savings apart ({figures_}: their ranges overlap). In theory the saving "
            "grows with the length, since each step without the cache re-reads the whole text; for a short text "
            "both ways mostly wait on reading the weights once per token.")


EFFECT = {"helps": "the examples help", "knows": "right without examples", "fails": "fails with or without examples",
          "hurts": "the examples hurt", "mixed": "no clear effect"}


def probability(x: float) -> str:
    """2 decimals, or 2 significant digits where 2 decimals would read 0.00 (a 'fails' curve's 0.00002)."""
    return f"{x:.2f}" if x >= 0.005 or x == 0 else f"{x:.1e}"


def shots_effect(name: str, effect, n_examples: int) -> str:
    """What one task's zero- to few-shot curve shows on this model (core.prompting.Effect), in its numbers."""
    p = probability
    shots = f"{effect.best_shots} example{'s' if effect.best_shots != 1 else ''}"
    if effect.kind == "helps":
        return (f"**On {name} the examples teach the task:** P(right answer) rises from {p(effect.zero)} with none "
                f"to {p(effect.best)} with {shots}. Nothing but the prompt changed.")
    if effect.kind == "knows":
        return (f"**On {name} this task shows no few-shot effect:** the model is already right without examples "
                f"({p(effect.zero)}), and 1 to {n_examples} of them keep it between {p(effect.low)} and "
                f"{p(effect.high)}.")
    if effect.kind == "fails":
        return (f"**On {name} this task fails:** P(right answer) stays at or below {p(effect.high)} with 0 to "
                f"{n_examples} examples — from this prompt the model does not do it.")
    if effect.kind == "hurts":
        return (f"**On {name} the examples hurt here:** P(right answer) falls from {p(effect.zero)} with none to "
                f"as low as {p(effect.low)}.")
    return (f"**On {name} this task shows no clear effect:** P(right answer) moves between {p(effect.low)} and "
            f"{p(effect.high)} (zero-shot {p(effect.zero)}); read the curve's shape, not each wiggle.")


def byte_tokens(tokenizer, ids: list[int], shown) -> str:
    """A sentence on the tokens among `ids` that are one byte and no printable character — control characters, and
    lone bytes of characters written in several bytes — which a byte-level vocabulary holds and a learner may not
    recognise; "" when there are none. `shown`: how the page writes a token id."""
    control, pieces = [], []
    for i in ids:
        raw = tokenizer.token_bytes(i)
        if len(raw) == 1 and (raw[0] < 0x20 or raw[0] == 0x7F):
            control.append(i)
        elif len(raw) == 1 and raw[0] >= 0x80:
            pieces.append(i)
    said = []
    if control:
        said.append(", ".join(f"`{shown(i)}`" for i in control) + (" is a control character" if len(control) == 1
                    else " are control characters") + " (an invisible code such as tab or bell, not a letter)")
    if pieces:
        said.append(", ".join(f"`{shown(i)}`" for i in pieces) + (" is a single byte" if len(pieces) == 1 else
                    " are single bytes") + " of the 2–4 that write a character outside ASCII (é, €, 😀): no character "
                    "on its own")
    return ("Not every token is a word piece: " + "; ".join(said) + ".") if said else ""


def matrix_caption(m, cfg, token: str | None) -> str:
    """What the weight-matrix picture shows, for this matrix of this model."""
    sign = "Blue: positive, red: negative; the colours span the central 99% of the values (hover for each)."
    if m.name == "embedding":
        return (f"{m.cols.capitalize()}: the embedding table has one row per token ({m.shape[0]:,} rows); shown are "
                f"{m.rows.split(' of ')[0]}, and the outlined row is your text's last token, `{token}` (id "
                f"{m.marked_row}) — the vector the model starts from for it. {sign}")
    heads = (f" Dotted lines separate the heads: each head's {cfg.head_dim} columns make its own "
             f"{m.name[-1].lower()}." if m.col_group else "")
    if m.row_group:
        heads = (f" Dotted lines separate the heads: each head's {cfg.head_dim} rows carry that head's output "
                 "into the stream.")
    return f"Rows: {m.rows}; columns: {m.cols}.{heads} {sign}"
