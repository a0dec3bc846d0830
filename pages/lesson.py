"""The guided lesson: one forward pass of the learner's sentence on the loaded model, in short steps — text, tokens,
ids, embedding, positions, q k v, scores, ÷√d, mask, softmax, values, heads, add, feed-forward, blocks, final norm,
logits, softmax, temperature, the next token. Each step: a few sentences true for this model (the pages' own
texts), the real numbers of that step, a link to the full page, and at five steps a guess before the answer.
Next/Back (or the ← → keys) move; the step is in the URL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import cache, chart, figures, quiz, sidebar, texts, widgets
from pages.common.html import token_spans, visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
KEY = "lesson.step"
KEYS_SHOWN = 12  # per-key tables show the last keys only

st.title("🎓 Lesson: one forward pass, step by step")
widgets.need_text(ctx.text)
L = cache.lesson(ctx.model_name, ctx.device, ctx.text)
scope = f"{ctx.model_name}|{ctx.text}"
q, T = L.query, len(L.tokens)
name = (lambda i: visible(tok.display(i))) if tok else str
followed = f"`{visible(L.tokens[q])}`"
keys = list(range(max(0, q + 1 - KEYS_SHOWN) if cfg.causal else max(0, T - KEYS_SHOWN), q + 1 if cfg.causal else T))


def numbers(vector, k: int = 8) -> str:
    """The first k numbers of a vector, and how many it has."""
    values = np.asarray(vector, dtype=float).reshape(-1)
    shown = ", ".join(f"{v:+.3f}" for v in values[:k])
    return f"`[{shown}{', …' if len(values) > k else ''}]` ({len(values)} numbers)"


def norm(vector) -> float:
    return float(np.linalg.norm(np.asarray(vector, dtype=float)))


def per_key(columns: dict[str, list]) -> None:
    table = {"key": [f"{i}: {visible(L.tokens[i])}" for i in keys], **{k: [v[i] for i in keys] for k, v in
                                                                         columns.items()}}
    st.table(pd.DataFrame(table), hide_index=True)
    if len(keys) < (q + 1 if cfg.causal else T):
        st.caption(f"The last {len(keys)} keys of {q + 1 if cfg.causal else T}.")


def step_text() -> None:
    st.markdown(f"Everything that follows is **{ctx.model_name}** reading your text — {T} tokens — and the numbers "
                "are its own, computed now. We follow one token, " + followed + f" (position {q}), through every "
                "stage. " + ("Its last vector is what the model turns into a guess for the next token."
                             if cfg.lm_head else "This model is an encoder: it turns every token into a vector."))
    st.markdown(f"> {ctx.text[:400]}{'…' if len(ctx.text) > 400 else ''}")
    if L.n_truncated:
        st.caption(f"The model reads the first {T} tokens; {L.n_truncated} more were cut.")


def step_tokens() -> None:
    st.markdown(texts.stage(cfg, "tokens"))
    question = quiz.split(tok, ctx.text)
    if question is None or quiz.ask(question, scope):
        chart.tokens(token_spans(L.tokens, L.token_ids, show_ids=False), "lesson.tokens")
        st.markdown(f"**{T} tokens.**")
    st.page_link("pages/tokenizer.py", label="Tokenizer: every split, byte by byte", icon="✂️")
    st.page_link("pages/two_models.py", label="Two models side by side: how another model cuts it", icon="⚖️")


def step_ids() -> None:
    st.markdown(f"The model never sees the letters: each token is replaced by its integer id, between 0 and "
                f"{cfg.vocab_size - 1:,}. These {T} numbers are all that goes in.")
    chart.tokens(token_spans(L.tokens, L.token_ids), "lesson.ids")
    st.page_link("pages/tokenizer.py", label="Tokenizer", icon="✂️")


def step_embed() -> None:
    st.markdown(texts.embeddings(cfg))
    st.markdown(f"The row for {followed} (id {L.token_ids[q]}): {numbers(L.embed)}, length {norm(L.embed):.2f}.")
    st.page_link("pages/embeddings.py", label="Embedding space: the whole table, and neighbours", icon="🧭")


def step_positions() -> None:
    st.markdown(texts.positions(cfg).split(" The heatmap below")[0].split(" The sinusoidal table below")[0])
    if L.position is not None:
        st.markdown(f"Position {q}'s vector: {numbers(L.position)}, length {norm(L.position):.2f}.")
        if L.segment is not None:
            st.markdown(f"Segment (sentence A) vector: {numbers(L.segment)}.")
        st.markdown(f"What enters block 0 ({'the sum, after a LayerNorm' if cfg.post_norm else 'the sum'}): "
                    f"{numbers(L.block_input)}.")
    else:
        st.markdown(f"So block 0 receives the embedding row itself: {numbers(L.block_input)}.")
    st.page_link("pages/positions.py", label="Positional encoding", icon="📍")


def step_qkv() -> None:
    m = L.math
    st.markdown(f"Block 0 has {cfg.n_heads} attention heads; we open head {L.head} (why this one: step "
                f"{STEP_OF['heads']} asks). Each token's vector{' (normalised first)' if not cfg.post_norm else ''} is "
                f"multiplied by three learned matrices, giving a **query** q, a **key** k and a **value** v of "
                f"{cfg.head_dim} numbers for this head. The query asks, the keys answer, the values are what gets "
                "passed on." + (" q and k are then rotated by their position (RoPE)." if cfg.positional == "rope"
                                else "") + (f" Here {cfg.group_size} query heads share each k and v (grouped-query "
                                            "attention)." if cfg.kv_heads != cfg.n_heads else ""))
    st.markdown(f"q of {followed}: {numbers(m.q)}.")
    st.page_link("pages/attention.py", label="Attention: every layer and head", icon="👀")


def step_scores() -> None:
    st.markdown(f"The query of {followed} is compared with every key by a dot product q·k: one number per key. A "
                "large number means this key matches what the query asks for.")
    per_key({"q·k": [round(float(v), 3) for v in L.math.dots]})


def step_scale() -> None:
    st.markdown(f"Each score is divided by √{cfg.head_dim} = {np.sqrt(cfg.head_dim):.2f} (the square root of the "
                f"head size): for random vectors, a dot product of {cfg.head_dim} numbers spreads about "
                f"√{cfg.head_dim} = {np.sqrt(cfg.head_dim):.1f} times wider than a single product, and without the "
                "division a few large scores would take nearly all the weight after the softmax.")
    per_key({"q·k": [round(float(v), 3) for v in L.math.dots],
             f"÷ √{cfg.head_dim}": [round(float(v), 3) for v in L.math.scaled]})


def step_mask() -> None:
    quiz.ask(quiz.mask(L, cfg.causal), scope)
    st.page_link("pages/attention.py", label="Attention", icon="👀")


def step_softmax() -> None:
    m = L.math
    st.markdown("Softmax turns the scores into weights between 0 and 1 that sum to 1: e^score divided by the sum "
                "of e^score over the keys the query may see" + (" (a masked key gets exactly 0)." if cfg.causal else
                                                                 "."))
    per_key({"weight": [round(float(v), 4) for v in m.weights], "the model's own": [round(float(v), 4) for v in
                                                                                     m.model_weights]})
    st.caption(f"Sum of the weights: {float(m.weights.sum()):.4f}. Recomputed here from q and k, they equal what "
               f"the model computed (largest difference {float((m.weights - m.model_weights).abs().max()):.1e}).")


def step_values() -> None:
    m = L.math
    top = int(m.weights.argmax())
    st.markdown(f"The head's output for {followed} is the weighted sum of the values: Σ weight × v. The largest "
                f"weight, {float(m.weights[top]):.0%}, is on `{visible(L.tokens[top])}` (position {top}).")
    st.markdown(f"Output of head {L.head}: {numbers(m.z)} (the model's own differs by at most {m.z_error:.1e}).")


def step_heads() -> None:
    st.markdown(f"Every head does the same with its own matrices and looks for something different. Which of the "
                f"{cfg.n_layers * cfg.n_heads} heads of this model mostly looks at the token just before?")
    question = quiz.previous_head(L, ctx.model_name)
    if question is None:
        st.caption("A longer text is needed for this question (at least 3 tokens).")
    elif quiz.ask(question, scope):
        prev = L.previous_token.numpy()
        layer, head = divmod(int(np.argmax(prev)), cfg.n_heads)
        where = ("the model's strongest too" if (layer, head) == (0, L.head) else
                 f"the model's strongest is layer {layer}, head {head} ({prev[layer, head]:.0%})")
        st.markdown(f"The head steps {STEP_OF['qkv']}–{STEP_OF['values']} opened, block 0's head {L.head}, is the "
                    f"one of block 0's {cfg.n_heads} heads that looks most at the token just before: "
                    f"{prev[0, L.head]:.0%} of a token's weight on average, on your text — {where}.")
        widgets.open_page("attention", f"Open layer {layer}, head {head} on the Attention page", "lesson.prev.open",
                          model_name=ctx.model_name, layer=layer, head=head)


def step_concat() -> None:
    z = L.heads_z.numpy()
    st.markdown(f"The {cfg.n_heads} heads' outputs ({cfg.head_dim} numbers each) are put side by side — "
                f"{cfg.n_heads} × {cfg.head_dim} = {z.size} numbers — and one more learned matrix (the output "
                f"projection) mixes them back into {cfg.d_model} numbers: what attention adds to the token.")
    st.table(pd.DataFrame({"head": list(range(cfg.n_heads)), "first numbers of its output":
                               [numbers(row, 4).split(" (")[0] for row in z],
                               "length": [round(norm(row), 3) for row in z]}), hide_index=True)
    st.markdown(f"After the projection: {numbers(L.attn_out)}, length {norm(L.attn_out):.2f}.")


def step_add() -> None:
    st.markdown("Attention's result is **added** to the token's vector — the *residual stream* — not put in its "
                "place: whatever the block did not change flows on." + (
                    " Then a LayerNorm rescales the sum (post-norm, as in BERT)." if cfg.post_norm else ""))
    before = L.block_input
    st.markdown(f"- entering block 0: {numbers(before, 4)}, length {norm(before):.2f}\n"
                f"- attention adds: {numbers(L.attn_out, 4)}, length {norm(L.attn_out):.2f}\n"
                f"- the stream after{' the add and norm' if cfg.post_norm else ''}: {numbers(L.resid_mid, 4)}, "
                f"length {norm(L.resid_mid):.2f}")
    st.page_link("pages/residual.py", label="Residual stream & norms", icon="➕")
    st.page_link("pages/flow.py", label="Information flow: each part's share of the sum", icon="🕸️")


def step_mlp() -> None:
    st.markdown(texts.feed_forward(cfg).split(" With ")[0])
    hidden = L.mlp_hidden.numpy()
    strongest = np.argsort(-np.abs(hidden))[:5]
    st.markdown(f"For {followed} in block 0: {hidden.size} hidden units; the 5 strongest are " + ", ".join(
        f"unit {i} ({hidden[i]:+.2f})" for i in strongest) + f". The layer adds {numbers(L.mlp_out, 4)} (length "
                f"{norm(L.mlp_out):.2f}); the stream leaving block 0: {numbers(L.resid_post, 4)}.")
    st.page_link("pages/feed_forward.py", label="Feed-forward layer", icon="🧠")


def step_blocks() -> None:
    st.markdown(texts.block(cfg))
    s = L.summary
    fig = figures.lines(s.labels, {"length of the stream": s.resid_norm[:, 0].tolist()},
                        title=f"{visible(L.tokens[q])} through all {cfg.n_layers} blocks", xtitle="after stage",
                        ytitle="vector length (L2 norm)")
    chart.show(fig, key="lesson.blocks")
    if s.has_final_norm:
        st.caption(f"The last point is after the final {texts.NORM[cfg.norm]}: it rescales the stream to a typical size "
                   "before the unembedding.")
    if s.lens_ids is not None and cfg.n_layers > 1:
        every = max(1, cfg.n_layers // 6)  # the last block's guess is the answer: step "Logits" asks for it first
        guesses = [(i, name(int(s.lens_ids[s.index(i, "mlp"), 0, 0]))) for i in range(0, cfg.n_layers - 1, every)]
        st.markdown("If it stopped after block … it would predict: " + ", ".join(
            f"{i}: `{g}`" for i, g in guesses) + f". After the last block, {cfg.n_layers - 1}, comes its real "
            f"prediction: step {STEP_OF['logits']} asks you to guess it first.")
    st.page_link("pages/forward_pass.py", label="The forward pass in one picture", icon="🧩")
    st.page_link("pages/patching.py", label="Activation patching: which block and token carry the answer", icon="🔬")


def step_final_norm() -> None:
    n = L.last_norm
    st.markdown((texts.stage(cfg, "final_norm") + " " if not cfg.post_norm else
                 "This model normalises after every add (post-norm), so its last step is the last block's second "
                 "LayerNorm — there is no separate final norm. ") + texts.layer_norm(cfg))
    centre = f"mean {n.mean:+.3f}, " if n.mean is not None else ""
    st.markdown(f"For {followed}: {centre}divisor {n.spread:.3f}.\n\n- before: {numbers(n.before, 6)}\n"
                f"- after: {numbers(n.after, 6)}")
    st.page_link("pages/residual.py", label="Residual stream & norms", icon="➕")


def step_logits() -> None:
    st.markdown(texts.stage(cfg, "unembed"))
    if quiz.ask(quiz.next_token(L, tok, ctx.text), scope):
        st.table(pd.DataFrame({"token": [name(i) for i in L.top_ids[:5]], "id": L.top_ids[:5],
                                   "logit": [round(v, 3) for v in L.top_logits[:5]]}), hide_index=True)
    st.page_link("pages/next_token.py", label="Next token", icon="🎲")


def step_probs() -> None:
    st.markdown(texts.stage(cfg, "softmax"))
    chart.show(figures.bars([name(i) for i in L.top_ids[:8]], L.top_probs[:8],
                            title="The 8 most likely next tokens"), key="lesson.probs")
    st.caption(f"These 8 hold {sum(L.top_probs[:8]):.1%} of the probability; the other {cfg.vocab_size - 8:,} "
               "tokens share the rest.")
    st.page_link("pages/surprise.py", label="Surprise: the probability of every token of your text", icon="😮")


def step_temperature() -> None:
    st.markdown("Temperature divides the logits before the softmax: below 1 it sharpens the distribution, above 1 "
                "it flattens it. Sampling then draws a token at random with those probabilities (top-k and top-p "
                "first drop the unlikely tail).")
    if quiz.ask(quiz.temperature_zero(L, tok), scope):
        st.table(pd.DataFrame({"token": [name(i) for i in L.top_ids[:5]], **{
            f"T = {t:g}": [f"{p:.1%}" for p in probs[:5]] for t, probs in L.by_temperature.items()}}),
            hide_index=True)
    st.page_link("pages/next_token.py", label="Next token: sampling, step by step", icon="🎲")


def step_next() -> None:
    st.markdown("The chosen token is appended to the text and the whole pass runs again for the next one — "
                "generation is this loop. Taking the most likely token each time (temperature 0), the model "
                "continues:")
    ids = L.token_ids + L.next_ids
    chart.tokens(token_spans([name(i) for i in ids], show_ids=False, mark_from=T), "lesson.continued")
    st.caption(f"Outlined: the {len(L.next_ids)} tokens it wrote, one forward pass each (with a KV cache, each pass "
               "runs the model on the new token only and reuses the earlier tokens' keys and values).")
    st.page_link("pages/generation.py", label="Generation & KV cache", icon="🔁")


def step_encoder_end() -> None:
    st.markdown(texts.no_unembedding(cfg, ": one per token, every one of them read from the whole sentence"))
    last = L.summary.resid_norm[-1, 0]
    st.markdown(f"For {followed}, after block {cfg.n_layers - 1}: a vector of {cfg.d_model} numbers, length "
                f"{float(last):.2f}.")
    st.page_link("pages/embeddings.py", label="Embedding space: the same word in two contexts", icon="🧭")


STEPS = [("Your text", step_text), ("Tokens", step_tokens), ("Token ids", step_ids),
         ("Embedding rows", step_embed), ("Positions", step_positions), ("Query, key, value", step_qkv),
         ("Scores: q·k", step_scores), ("÷ √d", step_scale), ("The mask", step_mask), ("Softmax: weights", step_softmax),
         ("Weighted sum of values", step_values), ("Many heads", step_heads), ("Heads concatenated", step_concat),
         ("Add: the residual stream", step_add), ("Feed-forward layer", step_mlp), ("The stack of blocks", step_blocks),
         ("Final norm", step_final_norm)]
STEPS += ([("Logits", step_logits), ("Softmax: probabilities", step_probs),
           ("Temperature and sampling", step_temperature), ("The next token, and around again", step_next)]
          if cfg.lm_head else [("No next token: what an encoder gives", step_encoder_end)])


STEP_OF = {draw.__name__.removeprefix("step_"): i for i, (_, draw) in enumerate(STEPS, 1)}


def go(delta: int) -> None:
    st.session_state[KEY] = min(max(st.session_state.get(KEY, 1) + delta, 1), len(STEPS))


if st.session_state.get(KEY, 1) > len(STEPS):  # kept from a model with a longer lesson
    st.session_state[KEY] = len(STEPS)
back, middle, forward = st.columns([1, 4, 1], vertical_alignment="center")
k = widgets.number("Step", KEY, 1, len(STEPS), 1, where=middle, label_visibility="collapsed")
title, draw = STEPS[k - 1]
back.button("Back", key="lesson.back", on_click=go, args=(-1,), disabled=k == 1, shortcut="Left",
            width="stretch")
forward.button("Next", key="lesson.next", on_click=go, args=(1,), disabled=k == len(STEPS), shortcut="Right",
               type="primary", width="stretch")
st.progress(k / len(STEPS), text=f"Step {k} of {len(STEPS)}: {title}")
st.header(f"{k}. {title}")
draw()
right, answered = quiz.score()
st.divider()
st.caption(f"← and → move between steps. The address bar holds the step: share it to open this step on this text. "
           f"Your guesses this session: {right} right of {answered}.")
