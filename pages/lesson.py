"""The guided lesson: one forward pass of the learner's sentence on the loaded model, in short steps — text, tokens,
ids, embedding, positions, q k v, scores, ÷√d, mask, softmax, values, heads, add, feed-forward, blocks, final norm,
logits, softmax, temperature, the next token. Each step: a few sentences true for this model (the pages' own
texts), the real numbers of that step, a link to the full page, and at five steps a guess before the answer.
Next/Back (or the ← → keys) move; the step is in the URL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.interpret.architecture import lesson_part
from core.lesson import mask_row, mask_window
from pages.common import architecture, cache, chart, figures, quiz, sidebar, texts, widgets
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


def the_numbers(table: pd.DataFrame) -> None:
    """A table, only for a learner who asks: behind an expander under the picture."""
    with st.expander("the numbers"):
        st.table(table, hide_index=True)


def per_key(columns: dict[str, list]) -> None:
    table = {"key": [f"{i}: {visible(L.tokens[i])}" for i in keys], **{k: [v[i] for i in keys] for k, v in
                                                                         columns.items()}}
    the_numbers(pd.DataFrame(table))


def key_chart(values, key: str, title: str, ytitle: str, **kw) -> None:
    """One query's numbers as a bar per key (the keys the step shows), masked keys hatched."""
    math = kw.pop("math", L.math)
    chosen = kw.pop("keys", keys)
    masked = (~math.visible.numpy())[chosen]
    behind = kw.pop("behind", None)
    fig = figures.key_bars([L.tokens[i] for i in chosen], np.asarray(values)[chosen], masked, title, ytitle,
                           first=chosen[0], behind=None if behind is None else np.asarray(behind)[chosen], **kw)
    chart.show(fig, key=key)
    if len(chosen) < len(values):
        st.caption(f"The last {len(chosen)} keys of {len(values)}" + (" (the query sees the keys up to itself)."
                                                                     if cfg.causal else "."))


def strips(vectors: dict, key: str, title: str = "") -> None:
    chart.show(figures.strips({k: np.asarray(v, dtype=float) for k, v in vectors.items()}, title), key=key)
    st.caption(f"Each strip is a vector, one cell per number: {figures.SIGNED.lower()}, one colour scale for the "
               "strips of one chart; ‖·‖ is its length (L2 norm). Hover a cell for its number.")


MAP_OPEN_UP_TO = 12  # blocks: a deeper model's picture (SmolLM2's 30: ~1,100 px) starts folded at every step


def place(step: str) -> None:
    """The step's place on the architecture picture: block 0 open, the part the step is about lit."""
    part = lesson_part(step, L.head, cfg.post_norm)
    tall = cfg.n_layers > MAP_OPEN_UP_TO  # its picture is taller than a screen: the step's own view comes first
    with st.expander("Where this step is in the model" + (f" (all {cfg.n_layers} blocks: open to see it)" if tall
                                                          else ""), expanded=not tall):
        architecture.show(ctx, q, "lesson.map", highlight=part or None, open_block=0, choose=False, caption=False)
        st.caption("The whole model, block 0 opened; the part this step is about is lit yellow. Click a part to open "
                   "its page.")


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
    st.markdown(f"The row for {followed} (id {L.token_ids[q]}): {cfg.d_model} numbers, length {norm(L.embed):.2f}.")
    strips({f"embedding row of {visible(L.tokens[q])}": L.embed}, "lesson.embed.fig",
           f"The embedding row of {visible(L.tokens[q])} (id {L.token_ids[q]})")
    st.page_link("pages/embeddings.py", label="Embedding space: the whole table, and neighbours", icon="🧭")


def step_positions() -> None:
    st.markdown(texts.positions(cfg).split(" The heatmap below")[0].split(" The sinusoidal table below")[0])
    if L.position is not None:
        rows = {"embedding row": L.embed, f"+ position {q}'s vector": L.position}
        if L.segment is not None:
            rows["+ segment (sentence A) vector"] = L.segment
        rows["= what enters block 0" + (" (the sum, after a LayerNorm)" if cfg.post_norm else "")] = L.block_input
        strips(rows, "lesson.positions.fig", f"{visible(L.tokens[q])} at position {q}: the vectors adding up")
        if cfg.post_norm:
            st.caption("The last strip is the sum after a LayerNorm: it rescales the sum, so it is not the cells' sum.")
    else:
        st.markdown("So block 0 receives the embedding row itself; the position acts inside attention, on q and k.")
        strips({"what enters block 0 (the embedding row)": L.block_input}, "lesson.positions.fig")
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
    strips({f"q of {visible(L.tokens[q])}": m.q, f"v of {visible(L.tokens[q])}": L.values[q]}, "lesson.qkv.fig",
           f"Block 0, head {L.head}: the query and the value of {visible(L.tokens[q])}")
    st.page_link("pages/attention.py", label="Attention: every layer and head", icon="👀")


def step_scores() -> None:
    st.markdown(f"The query of {followed} is compared with every key by a dot product q·k: one number per key. A "
                "large number means this key matches what the query asks for.")
    key_chart(L.math.dots.numpy(), "lesson.scores.fig", f"q·k: the query of {visible(L.tokens[q])} against each key",
              "q·k")
    if not (~L.math.visible).any():
        st.caption("No key is masked for this query: " + ("it is the last token, so every key comes before it."
                                                          if cfg.causal else "an encoder masks nothing.")
                   + f" Step {STEP_OF['mask']} draws a row that has masked keys.")
    per_key({"q·k": [round(float(v), 3) for v in L.math.dots]})


def step_scale() -> None:
    st.markdown(f"Each score is divided by √{cfg.head_dim} = {np.sqrt(cfg.head_dim):.2f} (the square root of the "
                f"head size): for random vectors, a dot product of {cfg.head_dim} numbers spreads about "
                f"√{cfg.head_dim} = {np.sqrt(cfg.head_dim):.1f} times wider than a single product, and without the "
                "division a few large scores would take nearly all the weight after the softmax.")
    key_chart(L.math.scaled.numpy(), "lesson.scale.fig", f"The same scores ÷ √{cfg.head_dim}",
              f"q·k ÷ √{cfg.head_dim}", behind=L.math.dots.numpy(), behind_name="q·k before (outline)")
    per_key({"q·k": [round(float(v), 3) for v in L.math.dots],
             f"÷ √{cfg.head_dim}": [round(float(v), 3) for v in L.math.scaled]})


def step_mask() -> None:
    if quiz.ask(quiz.mask(L, cfg.causal), scope):
        m, row = L.mask_math, mask_row(T, q)
        window = list(mask_window(T, q))
        hidden = int((~m.visible).sum())
        st.markdown(f"The same in one row as bars: the scores of `{visible(L.tokens[row])}` (row {row}, head "
                    f"{L.mask_head})" + (f" — its {hidden} later keys are masked: their score becomes −∞, so after the "
                                         "softmax their weight is exactly 0." if hidden else " — nothing is masked."))
        key_chart(m.scaled.numpy(), "lesson.mask.scores", f"Scores of row {row} (÷ √{cfg.head_dim}), the mask on them",
                  "score", math=m, keys=window)
        key_chart(m.weights.numpy(), "lesson.mask.weights", f"After the softmax: masked keys get 0 "
                  f"(the weights sum to {float(m.weights.sum()):.4f})", "weight", math=m, keys=window, masked_text="0")
    st.page_link("pages/attention.py", label="Attention", icon="👀")


def step_softmax() -> None:
    m = L.math
    st.markdown("Softmax turns the scores into weights between 0 and 1 that sum to 1: e^score divided by the sum "
                "of e^score over the keys the query may see" + (" (a masked key gets exactly 0)." if cfg.causal else
                                                                 "."))
    key_chart(m.weights.numpy(), "lesson.softmax.fig", f"Softmax: the weights of {visible(L.tokens[q])}'s query, "
              f"summing to {float(m.weights.sum()):.4f}", "weight", masked_text="0")
    per_key({"weight": [round(float(v), 4) for v in m.weights], "the model's own": [round(float(v), 4) for v in
                                                                                     m.model_weights]})
    st.caption(f"Sum of the weights over all {T} keys: {float(m.weights.sum()):.4f}. Recomputed here from q and k, they equal what "
               f"the model computed (largest difference {float((m.weights - m.model_weights).abs().max()):.1e}).")


def step_values() -> None:
    m = L.math
    top = int(m.weights.argmax())
    st.markdown(f"The head's output for {followed} is the weighted sum of the values: Σ weight × v. The largest "
                f"weight, {float(m.weights[top]):.0%}, is on `{visible(L.tokens[top])}` (position {top}).")
    chart.show(figures.stacked_parts(*value_parts(), title=f"Head {L.head}'s output for {visible(L.tokens[q])}: "
                                     "weight × value of each key, stacked", total_name="the sum: the head's output"),
               key="lesson.values.fig")
    st.caption(f"Each bar is one of the {cfg.head_dim} numbers of the output; its coloured pieces are what each key "
               "adds (its weight × its value), the black mark their sum. Recomputed here, the output differs from the "
               f"model's own by at most {m.z_error:.1e}. Hover a piece for its number.")
    the_numbers(pd.DataFrame({"key": [f"{i}: {visible(L.tokens[i])}" for i in range(T)],
                              "weight": [round(float(v), 4) for v in m.weights],
                              "value's length": [round(norm(v), 3) for v in L.values]}))


VALUE_KEYS = 4  # the weighted sum's picture stacks the keys with the largest weights, the rest as one part


def value_parts() -> tuple[dict, np.ndarray]:
    """The head's output as its parts: weight × value of the VALUE_KEYS keys with the most weight, and the rest."""
    m = L.math
    w, v = m.weights.numpy().astype(float), L.values.numpy().astype(float)
    top = [int(i) for i in np.argsort(-w)[:VALUE_KEYS] if w[i] > 0]
    parts = {f"{i}: {visible(L.tokens[i])} × {w[i]:.2f}": w[i] * v[i] for i in top}
    rest = [i for i in range(T) if i not in top and w[i] > 0]
    if rest:
        parts[f"the other {len(rest)} keys"] = (w[rest, None] * v[rest]).sum(0)
    return parts, m.z.numpy()


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
    strips({f"head {h}" + (" (the one opened)" if h == L.head else ""): row for h, row in enumerate(z)},
           "lesson.concat.heads", f"The {cfg.n_heads} heads' outputs for {visible(L.tokens[q])}, side by side")
    strips({"after the output projection: what attention adds": L.attn_out}, "lesson.concat.out")
    the_numbers(pd.DataFrame({"head": list(range(cfg.n_heads)), "first numbers of its output":
                              [numbers(row, 4).split(" (")[0] for row in z],
                              "length": [round(norm(row), 3) for row in z]}))


def step_add() -> None:
    st.markdown("Attention's result is **added** to the token's vector — the *residual stream* — not put in its "
                "place: whatever the block did not change flows on." + (
                    " Then a LayerNorm rescales the sum (post-norm, as in BERT)." if cfg.post_norm else ""))
    after = "= the stream after" + (" (the sum, then a LayerNorm)" if cfg.post_norm else "")
    strips({"x: entering block 0": L.block_input, "+ attention's output": L.attn_out, after: L.resid_mid},
           "lesson.add.fig", f"{visible(L.tokens[q])}'s stream: x + attention's output")
    st.page_link("pages/residual.py", label="Residual stream & norms", icon="➕")
    st.page_link("pages/flow.py", label="Information flow: each part's share of the sum", icon="🕸️")


def step_mlp() -> None:
    st.markdown(texts.feed_forward(cfg).split(" With ")[0])
    hidden = L.mlp_hidden.numpy()
    strongest = np.argsort(-np.abs(hidden))[:5]
    st.markdown(f"For {followed} in block 0: {cfg.d_model} → {hidden.size} → {cfg.d_model}; the 5 strongest "
                "units are " + ", ".join(f"unit {i} ({hidden[i]:+.2f})" for i in strongest) + ".")
    chart.show(figures.feed_forward(L.resid_mid.numpy(), hidden, L.mlp_out.numpy(), [int(i) for i in strongest], (
        f"reads the stream ({cfg.d_model} numbers" + (")" if cfg.post_norm else ", normalised first)"),
        f"{hidden.size} hidden units after the activation: the 5 strongest named",
        f"adds {cfg.d_model} numbers, length {norm(L.mlp_out):.2f}"), title=f"Block 0's feed-forward layer on "
        f"{visible(L.tokens[q])}"), key="lesson.mlp.fig")
    st.caption(f"{figures.SIGNED}; hover for each number. The first strip is the stream before the layer's "
               f"{'own norm' if not cfg.post_norm else 'work'}.")
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
    st.markdown(f"For {followed}: {centre}divisor {n.spread:.3f}.")
    strips({"before the norm": n.before, "after it": n.after}, "lesson.final_norm.fig",
           f"{visible(L.tokens[q])}'s vector through the model's last norm")
    st.page_link("pages/residual.py", label="Residual stream & norms", icon="➕")


def step_logits() -> None:
    st.markdown(texts.stage(cfg, "unembed"))
    if quiz.ask(quiz.next_token(L, tok, ctx.text), scope):
        fig = figures.key_bars([name(i) for i in L.top_ids], L.top_logits, title="The 10 largest logits: one score "
                               f"per token of the {cfg.vocab_size:,}", ytitle="logit")
        fig.update_xaxes(ticktext=[figures.plain(name(i)) for i in L.top_ids],
                         tickvals=figures.labels([name(i) for i in L.top_ids]))
        chart.show(fig, key="lesson.logits.fig")
        the_numbers(pd.DataFrame({"token": [name(i) for i in L.top_ids[:5]], "id": L.top_ids[:5],
                                  "logit": [round(v, 3) for v in L.top_logits[:5]]}))
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
        chart.show(figures.grouped_bars([figures.plain(name(i)) for i in L.top_ids[:5]], {
            f"T = {t:g}": probs[:5] for t, probs in L.by_temperature.items()}, title="The 5 most likely tokens' "
            "probability at each temperature", ytitle="probability"), key="lesson.temperature.fig")
        the_numbers(pd.DataFrame({"token": [name(i) for i in L.top_ids[:5]], **{
            f"T = {t:g}": [f"{p:.1%}" for p in probs[:5]] for t, probs in L.by_temperature.items()}}))
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
draw()  # the step's own picture first; its place on the whole model (30 blocks tall on some) under it
place(draw.__name__.removeprefix("step_"))
right, answered = quiz.score()
st.divider()
st.caption(f"← and → move between steps. The address bar holds the step: share it to open this step on this text. "
           f"Your guesses this session: {right} right of {answered}.")
