"""Translation: the original Transformer — an English→French encoder–decoder trained by this project — on a
sentence: the French written word by word, the encoder's self-attention, the decoder's masked self-attention and
the cross-attention between them, bertviz's three views, and teacher forcing versus inference."""

import numpy as np
import streamlit as st

from core import en_fr
from core.loading import registry
from pages.common import architecture, cache, chart, figures, sidebar, texts, widgets
from pages.common.html import bertviz_offline

DEFAULT = "the small girl sees a red car"
EXAMPLES = [
    "the small girl sees a red car",
    "a big dog eats the green apple",
    "the black cat does not like a small mouse",
    "the big red car doesn't see the house",
    "the boy finds the tree",
    "a small green bird likes the black table",
]

ctx = sidebar.context()
entry = registry.find(kind="encoder-decoder")
st.title("🇫🇷 Translation: the original Transformer")
if entry is None:
    st.error("The translator is missing from assets/models/ (README: `python -m tools.train_translator`).")
    st.stop()
model = cache.model(entry.name, ctx.device)
cfg, tok = model.config, model.tokenizer
if ctx.entry.kind != "encoder-decoder":
    st.caption(f"This page always uses **{entry.name}**, the one encoder–decoder here; the sidebar's model "
               f"({ctx.model_name}) is a {ctx.entry.kind}.")
st.sidebar.caption("🇫🇷 The Translation page reads the sentence typed on the page; the text above is for the other "
                   "pages.")
st.markdown(texts.seq2seq_intro(cfg, len(tok.source_words)))


def _use_example() -> None:
    st.session_state["tr.text"] = st.session_state["_tr_example"]


c1, c2 = st.columns([3, 2])
text = widgets.text("text_input", "English sentence", "tr.text", DEFAULT, 300, where=c1)
c2.selectbox("…or pick an example", EXAMPLES, key="_tr_example", index=None, on_change=_use_example,
             placeholder="Examples")
try:
    result = cache.translation(entry.name, ctx.device, text)
except ValueError as err:  # unknown words, nothing typed, too long: said plainly, nothing translated
    st.warning(str(err), icon="✋")
    st.stop()
tr = result.trace
words = tok.pieces(text)
expected = en_fr.parse(words)
st.markdown(f"### {result.text}")
if expected is None:
    st.warning("Every word is known, but this is not a sentence of the grammar the model was trained on "
               "(DET [ADJ] [ADJ] NOUN, a verb or “does not” + verb, DET [ADJ] [ADJ] NOUN). It still writes "
               "something — shown above — but nothing in its training says what the right answer is.", icon="⚠️")
else:
    right = tok.decode([tok.id_of(w) for w in expected.french])
    if right == result.text:
        st.success(f"The grammar's own translation is the same: “{right}”. " + (
            "This sentence holds a combination no training sentence had." if expected.held_out else
            "It holds no held-out combination, so it may well be one of the training sentences."))
    else:
        st.error(f"The grammar's translation is “{right}”: the model got this one wrong.")
if not result.finished:
    st.caption(f"It had not written `</s>` after {len(result.output_ids)} words, the length limit: cut off here.")

st.subheader("The whole model, with your sentence in it")
architecture.show_translation(entry.name, ctx.device, text, "tr.arch")

st.subheader("Tokens and ids")
st.markdown("**Encoder input** (English words + `</s>`): " + " · ".join(
    f"`{t}` {i}" for t, i in zip(tr.source_tokens, tr.source_ids)))
st.markdown("**Decoder input** (`<s>` + the French written so far): " + " · ".join(
    f"`{t}` {i}" for t, i in zip(tr.target_tokens, tr.target_ids)))
st.caption(f"One token per word: a closed vocabulary of {cfg.vocab_size:,} words (English, French and `<s>`, `</s>`, "
           "`<unk>`), shared by both languages — “table” is one token. Capitals and a final full stop are dropped. "
           "`<unk>` never occurred in training, so a sentence with an unknown word is refused, not translated.")

st.subheader("Word by word")
st.markdown(texts.seq2seq_step(cfg))
steps = len(tr.target_ids)
chosen = [tok.display(i) for i in result.output_ids]
row_labels = [f"{fed}→{out}" for fed, out in zip(tr.target_tokens, chosen)]  # fed → wrote
widgets.reset_on_change("tr.step", text, steps - 1)
step = widgets.slider("Decoder step (the row numbers below)", "tr.step", 0, steps - 1, steps - 1,
                      clamp="for this sentence")
probs = tr.probs[step]
top = probs.topk(5)
c1, c2 = st.columns(2)
c1.markdown("Fed: " + " ".join(f"`{t}`" for t in tr.target_tokens[: step + 1]))
chart.show(figures.bars([tok.display(i) for i in top.indices.tolist()], top.values.tolist(),
                             title=figures.plain(f"Step {step}: the next word's top 5 (it wrote “{chosen[step]}”)")), key="tr.bars", where=c1)
c1.caption(f"Runner-up: “{tok.display(int(top.indices[1]))}” with probability {float(top.values[1]):.1e}. The "
           "grammar is small and regular enough that the model learned it almost perfectly, so it is nearly certain "
           "of every word; translation models of real language are far less sure.")
last = cfg.n_decoder_layers - 1
reads = tr.cross_pattern(last)[:, step].mean(0).numpy()
chart.show(figures.bars([f"{i}:{t}" for i, t in enumerate(tr.source_tokens)], reads.tolist(),
                             xtitle="cross-attention weight",
                             title=f"…and where it looked in the English (last layer, mean of {cfg.n_heads} heads)"), key="tr.reads", where=c2)

st.subheader("Cross-attention: which English word each French word reads")
st.markdown(texts.cross_attention(cfg))
heads = ["mean of the heads", *range(cfg.n_heads)]
c1, c2 = st.columns(2)
layer = widgets.slider("Decoder layer", "tr.layer", 0, last, last, clamp="for this model", where=c1)
head = widgets.choice("selectbox", f"Head (0–{cfg.n_heads - 1}; also for the two maps below)", "tr.head", heads,
                      default=heads[0], format_func=lambda h: h if h == heads[0] else f"head {h}", where=c2)
which = head if head == heads[0] else f"head {head}"


def shown(pattern) -> np.ndarray:
    """(heads, rows, cols) → the chosen head, or the heads' mean."""
    return (pattern.mean(0) if head == heads[0] else pattern[int(head)]).numpy()


cross = shown(tr.cross_pattern(layer))
chart.show(figures.attention_heatmap(cross, row_labels, f"Cross-attention, decoder layer {layer}, {which}",
                                          key_tokens=tr.source_tokens, ytitle="decoder step (fed → wrote)",
                                          xtitle="English token (encoder output)"), key="tr.cross")
articles = {w for pair in en_fr.DETS.values() for w in pair} | {"l'"}
st.markdown(texts.alignment(chosen, [tr.source_tokens[j] for j in cross.argmax(1)], [int(j) for j in cross.argmax(1)],
                            articles, set(en_fr.NOUNS), which))
if widgets.toggle(f"Show the {cfg.n_heads} heads of every decoder layer side by side", "tr.grid"):
    chart.show(figures.attention_grid([tr.cross_pattern(i).numpy() for i in range(cfg.n_decoder_layers)],
                                           cfg.n_heads), key="tr.grid_chart")
    st.caption("Rows of blocks: decoder layers 0, 1; columns: heads. Inside a block, rows are decoder steps and "
               "columns English tokens, as in the map above.")
widgets.download_csv({"step": row_labels, **{t: cross[:, j] for j, t in enumerate(figures.labels(tr.source_tokens))}},
                     f"{entry.name}_cross_L{layer}.csv")

st.subheader("The other two attentions")
c1, c2 = st.columns(2)
enc_layer = widgets.slider("Encoder layer", "tr.enc_layer", 0, cfg.n_layers - 1, 0, clamp="for this model", where=c1)
chart.show(figures.attention_heatmap(shown(tr.encoder_pattern(enc_layer)), tr.source_tokens,
                                          f"Encoder self-attention, layer {enc_layer}, {which}"), key="tr.enc", where=c1)
c1.caption("Nothing is masked: the encoder has the whole English sentence from the start, so a word may read the "
           "words after it.")
dec_layer = widgets.slider("Decoder layer ", "tr.dec_layer", 0, last, 0, clamp="for this model", where=c2)
chart.show(figures.attention_heatmap(shown(tr.decoder_pattern(dec_layer)), row_labels,
                                          f"Decoder masked self-attention, layer {dec_layer}, {which}",
                                          hidden=tr.decoder_hidden().numpy(), key_tokens=tr.target_tokens,
                                          xtitle="word fed at that position"), key="tr.dec", where=c2)
c2.caption("Yellow cells are masked: a step may read the word it was fed and the words before it, never the later "
           "ones — at inference they do not exist yet.")

st.subheader("bertviz: the three attentions, head by head")
if widgets.toggle("Show bertviz's head view (encoder, decoder and cross attention)", "tr.bertviz"):
    import bertviz

    view = bertviz.head_view(
        encoder_attention=[tr.encoder_pattern(i)[None] for i in range(cfg.n_layers)],
        decoder_attention=[tr.decoder_pattern(i)[None] for i in range(cfg.n_decoder_layers)],
        cross_attention=[tr.cross_pattern(i)[None] for i in range(cfg.n_decoder_layers)],
        encoder_tokens=tr.source_tokens, decoder_tokens=tr.target_tokens, html_action="return")
    st.iframe(bertviz_offline(view.data), height=26 * max(steps, len(tr.source_ids)) + 130)
    st.caption("Pick Encoder, Decoder or Cross in its menu (the decoder's words are what it was fed); the coloured "
               "squares are heads 0, 1, 2, 3 from left to right; hover a word to see what it attends to.")

st.subheader("Training versus inference: teacher forcing")
st.markdown(texts.teacher_forcing())
if expected is None:
    st.info("Teacher forcing needs the correct French sentence, and this one is not a sentence of the grammar.")
else:
    forced = cache.teacher_forced(entry.name, ctx.device, text, tuple(expected.french))
    training = widgets.toggle("Show what the decoder is fed in training (the shifted correct sentence)",
                              "tr.forcing")
    st.caption("When the model writes every word right, the two tables differ only in their heading: what changes is "
               "what happens after a mistake — try one below.")
    shown_trace = forced if training else tr
    best = shown_trace.probs.max(-1)
    st.dataframe({"position": list(range(len(shown_trace.target_ids))),
                  "fed " + ("(training: the correct words)" if training else "(inference: its own words)"):
                      shown_trace.target_tokens,
                  "predicts": [tok.display(i) for i in best.indices.tolist()],
                  "probability": [round(float(p), 4) for p in best.values]}, hide_index=True)
    st.markdown("**Change one word it wrote** — the decoder is fed a wrong word at one step, everything else equal:")
    c1, c2 = st.columns(2)
    n_fr = len(expected.french)
    at = widgets.slider("Position (in the table) fed a wrong word", "tr.wrong_at", 1, n_fr, 1,
                        clamp="for this sentence", where=c1)
    options = [w for w in en_fr.french_words() if w != expected.french[at - 1]]
    wrong = widgets.choice("selectbox", "Wrong word", "tr.wrong", options,
                           default=en_fr.other_gender(expected.french[at - 1]) or options[0],
                           where=c2)
    after = [w for w in cache.continue_after(entry.name, ctx.device, text, tuple([*expected.french[: at - 1], wrong]))
             if w != "</s>"]
    rest = expected.french[at:]
    changed = sum(a != b for a, b in zip(after, rest)) + abs(len(after) - len(rest))
    marked = [f":orange[{a}]" if a != b else a for a, b in zip(after, rest)] + [f":orange[{a}]" for a in after[len(rest):]]
    sentence = " ".join([*expected.french[: at - 1], f"**{wrong}**", *marked]).replace("' ", "'")
    st.markdown(f"- **Inference** fed “{wrong}” at position {at} (as if it had written it) goes on: {sentence} — "
                f"{changed} of the {len(rest)} words after it {'differs' if changed == 1 else 'differ'} from the "
                "correct ones (in orange).\n"
                f"- **Training** never feeds it its mistake: position {at} is fed “{expected.french[at - 1]}”, the "
                "correct word, whatever it predicted before — so one wrong guess costs one word's loss, not the rest "
                "of the sentence.")

history = entry.history
if history is not None:
    st.subheader("How it learned")
    log = [e for e in history.raw["log"] if "exact_match" in e]
    chart.show(figures.two_axes([e["step"] for e in log],
                                     ("held-out loss (nats per French word)", [e["val_loss"] for e in log]),
                                     ("held-out exact match", [e["exact_match"] for e in log]),
                                     title="On held-out sentences during training (loss on a log scale)",
                                     xtitle="training step").update_layout(yaxis_type="log", yaxis_exponentformat="e",
                                                                           yaxis2_dtick=0.25), key="tr.curve")
    snapshots = cache.snapshot_translations(entry.name, text)
    st.dataframe({"training step": [s for s, _ in snapshots],
                  "its translation of your sentence": [t if len(t.split()) <= 14 else " ".join(t.split()[:14]) + " …"
                                                       for _, t in snapshots]}, hide_index=True)
    st.caption("Step 0 is the random start (it repeats one token until the length limit); the last row is the model "
               "this page uses.")

with st.expander("The course notes on the decoder, corrected"):
    for claim, fix in texts.NOTES_CORRECTED:
        st.markdown(f"- {claim} → {fix}")
