"""The causal experiments' explanation texts (Activation patching, Steering, Surprise), each true for the selected
model: its number of blocks, what its residual stream starts as, its kind. Their default sentences are core's
(core.interventions.default_pair, steer_defaults)."""

from __future__ import annotations

from core.config import ModelConfig


def _stream_start(cfg: ModelConfig) -> str:
    if cfg.positional == "learned":
        return "the token's embedding plus its learned position vector"
    if cfg.positional == "sinusoidal":
        return "the token's embedding plus its sinusoidal position vector"
    return "the token's embedding alone (RoPE puts the position into the attention scores, not into the stream)"


def patching(cfg: ModelConfig) -> str:
    return (
        "**Change one thing inside the model and watch the prediction move.** Run two sentences that differ in one "
        "word: the *clean* one makes the target token likely, the *corrupted* one does not. Then run the corrupted "
        "sentence again, but copy ONE vector from the clean run into it: the residual stream entering block *l* at "
        f"position *p*. If the target's probability comes back, that vector carried the information. {cfg.name} has "
        f"{cfg.n_layers} blocks, so the grid has {cfg.n_layers} rows (block 0's input is {_stream_start(cfg)}) and "
        "one column per token. The patch is an edit carried by this one run; the shared model is never changed. "
        "This is causal tracing (Meng et al. 2022), TransformerLens's activation patching."
    )


def patching_cells(cfg: ModelConfig) -> str:
    before = ("Columns before the first differing word are the same in both runs (each token sees only the tokens "
              "before it), so patching them changes nothing. " if cfg.causal else "")
    return (f"Each cell: the target's probability at the last position after that one patch. {before}Click a cell "
            "to see that patched run's top tokens below.")


def steering(cfg: ModelConfig) -> str:
    return (
        "**Push the model's thoughts in a direction.** Run a *positive* and a *negative* sentence and take the "
        "difference of their residual streams entering the chosen block (at their last token): a vector pointing "
        f"from one meaning to the other. Then run your prompt with strength × that vector added to the stream "
        f"entering that block at every position — {cfg.name}'s weights stay as they are, only this run's "
        f"{cfg.d_model}-number vectors are moved. Small strengths tilt the next word; large ones push the stream "
        "where no text ever took it and the output breaks (activation addition, Turner et al. 2023)."
    )


def steering_norms(vector_norm: float, stream_norm: float, layer: int) -> str:
    ratio = vector_norm / stream_norm if stream_norm else float("inf")
    verdict = ("a nudge" if ratio < 0.3 else "a strong push" if ratio < 1.0 else
               "larger than the stream itself: expect broken text")
    return (f"The added vector is {vector_norm:.1f} long; the stream entering block {layer} is typically "
            f"{stream_norm:.1f} long (median over your prompt's tokens after the first): {ratio:.0%} of it — {verdict}.")


def surprise(cfg: ModelConfig) -> str:
    return (
        f"**How surprised is {cfg.name} by each word?** Every token is coloured by −log p: the probability the "
        "model gave that very token, reading only the tokens before it (0 = certain, 2.3 = one chance in 10, "
        "4.6 = one in 100). Hover a token for what the model expected instead. The mean of these numbers is the "
        "loss the model was trained to lower (cross-entropy, in nats per token); e to that power is the "
        "perplexity — as unsure, on average, as a fair choice among that many tokens. The first token has no "
        "number: nothing came before it."
    )


def no_surprise(cfg: ModelConfig, decoders: list[str]) -> str:
    return (
        f"**{cfg.name} is an encoder:** it reads every token together with the tokens AFTER it, and has no "
        "next-token output (no unembedding). So there is no probability of a token given only the ones before "
        "it, and no surprise to colour: the loss and perplexity here are a decoder's measures. Pick a decoder "
        f"({', '.join(decoders)}) in the sidebar."
    )


def no_causal_target(cfg: ModelConfig, what: str, decoders: list[str]) -> str:
    return (
        f"**{cfg.name} is an encoder with no next-token output**, so there is no prediction for the {what} to "
        "move and no probability to measure. The same edits work inside it (core.interventions: a patch or a "
        "steering vector is applied to its stream like a decoder's), but this page reads their effect on the next "
        f"token. Pick a decoder ({', '.join(decoders)}) in the sidebar; the Attention page's “switch it off” shows "
        "an edit's effect on an encoder's output vectors."
    )


def saliency(cfg: ModelConfig, n_max: int) -> str:
    return (
        "**Which words mattered for the next token?** Two ways to ask the gradient. *Gradient × input*: how much "
        "the target's score would change if a token's embedding were nudged, times the embedding — fast, but only "
        "a local slope. *Integrated gradients*: slide every token embedding from a neutral one (the average of "
        f"{cfg.name}'s {cfg.vocab_size:,} embeddings) to the real one in small steps and add up the slopes on the "
        "way; the token scores then add up to how much the target's score rose from the neutral input — exactly "
        "with infinitely many steps, and with the 64 steps here as closely as the score changes smoothly on the way "
        f"(Sundararajan et al. 2017; the caption below measures how close). Blue pushed the target up, red pushed it "
        f"down. Texts up to {n_max} tokens."
    )


def flow(cfg: ModelConfig) -> str:
    parts = ("its output bias" if cfg.bias else "") + (" and its norm's shift" if cfg.post_norm else "")
    constant = (f"{cfg.name}'s biases ({parts}) make one more part that no token wrote: the constant, counted in "
                "the shares but not drawn." if parts else
                f"{cfg.name} has no biases, so every share belongs to a drawn part.")
    norm = (f" {cfg.name} normalises AFTER each add (post-norm, like BERT), so each part is measured as it comes out "
            "of that norm — the norm is linear once the sum's spread is fixed (Kobayashi et al. 2021)." if cfg.post_norm
            else "")
    reads = ("A position reads only itself and the tokens before it, so blue edges run from left to right."
             if cfg.causal else "Every position reads every other, so blue edges run both ways.")
    return (
        "**Where did the information come from?** Every vector in the residual stream is a sum: the vector that "
        "entered the block, plus what each attention head copied from each token, plus what the feed-forward block "
        f"added. {cfg.name} has {cfg.n_layers} blocks of {cfg.n_heads} heads; this page splits each of its "
        f"{2 * cfg.n_layers} sums at every position into those parts and gives each part its **share**: how much "
        "closer it brings you to the whole (in L1 distance; a part pointing away gets 0), divided so the shares of one "
        "sum add up to 1 — the measure of Meta's LLM Transparency Tool (Ferrando & Voita 2024). The graph keeps the "
        f"parts whose share passes the threshold, on a route to the followed position. {reads} {constant}{norm}"
    )


def flow_encoder(cfg: ModelConfig) -> str:
    return (f"**{cfg.name} is an encoder: it makes no prediction**, so there is no predicted token to follow. "
            "Instead, pick any token: the graph follows that token's final vector (what the encoder outputs for it) "
            "back to the input.")


def flow_caption(threshold: float) -> str:
    return (f"Edge width: the part's share of the stream it points into (thin: {threshold:.2f}–0.10, thickest: over "
            "0.50). Each block has two rows: the stream after its attention, then after its feed-forward block. Hover "
            "an edge for its share and, for attention, the heads that carried it.")


def two_models(first: str, second: str, kinds: tuple[str, str], same: bool) -> str:
    both = {("decoder", "decoder"): "two decoders", ("encoder", "encoder"): "two encoders",
            ("decoder", "encoder"): "a decoder and an encoder", ("encoder", "decoder"): "an encoder and a decoder"}
    if same:
        tokens = "They cut your text into the same tokens, so every view lines up position by position."
    elif kinds == ("decoder", "decoder"):
        tokens = ("They cut your text differently, so where tokens do not line up the comparison is made on the text "
                  "itself: next-token candidates by spelling, surprise per byte of text.")
    else:
        tokens = ("Only a decoder guesses the next token and can be surprised by one, so those views show the decoder "
                  "alone; the tokens and the attention heads compare both.")
    return (f"**The same text through {first} and {second}** ({both[kinds]}). What the table says they are — size, "
            f"depth, how they read — shows up in what they do with your sentence. {tokens}")
