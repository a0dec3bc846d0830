"""Tokenizer: text → tokens → IDs, four tokenizers side by side, BPE merges replayed, and your own BPE."""

import pandas as pd
import streamlit as st

from core.bpe import sample_text
from core.tokenizer import bytes_without_token, render_chat
from pages.common import cache, chart, figures, sidebar, texts, widgets
from pages.common.html import token_spans, visible

ctx = sidebar.context()
model = ctx.model
tok = model.tokenizer

st.title("✂️ Tokenizer")
if tok is None:
    st.info("This model was loaded without a tokenizer, so there is no text to split.")
    st.stop()
st.markdown(texts.tokenizer(model.config, tok.name, tok.kind,
                            digits_one_by_one=len(tok.pieces("2024")) == 4,  # the pre-tokenizer rule
                            missing_bytes=bytes_without_token(tok) if tok.kind == "bpe" else ()))
widgets.need_text(ctx.text)

ids = tok.encode(ctx.text)
st.subheader(f"Your text as {len(ids)} tokens")
chart.tokens(token_spans([tok.display(i) for i in ids[:2000]], ids[:2000], scope=tok.name), "tok.tokens")
if len(ids) > 2000:
    st.caption(f"Showing the first 2,000 of {len(ids):,} tokens.")
st.caption("Hover a token for its position, ID and bytes. · is a space, ↵ a newline, → a tab.")

if tok.kind == "wordpiece":  # the input each token stands for: "[UNK]" is not what the learner typed
    raw = [ctx.text[a:b].encode("utf-8", "surrogatepass") if b > a else tok.token_bytes(i)
           for (a, b), i in zip(tok.char_spans(ctx.text), ids)]
else:
    raw = [tok.token_bytes(i) for i in ids]
rows = {
    "position": list(range(len(ids))),
    "id": ids,
    "token": [visible(tok.display(i)) for i in ids],
    "bytes": [r.hex(" ") for r in raw],
    "n_bytes": [len(r) for r in raw],
}
with st.expander("Token table: each token's ID and raw bytes", expanded=len(ids) <= 40):
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption("Bytes are those of your text that each token stands for, as typed — before WordPiece lower-cases it "
               "and strips accents (`cafe` stands for `Café`); [CLS] and [SEP] stand for no text and show their own "
               "spelling. WordPiece never splits a character; a word it cannot spell becomes [UNK] whole."
               if tok.kind == "wordpiece" else
               "A token can hold part of a character (emoji and many scripts use several bytes): such a token's "
               "text shows the leftover bytes as \\xNN. Zero-width characters show as ‹ZWJ›, ‹ZWSP› and the like.")
widgets.download_csv(rows, "tokens.csv")

if tok.chat_template:
    st.subheader("The chat template: what a chat model really reads")
    chat = render_chat(tok.chat_template, [{"role": "user", "content": ctx.text[:2000]}])
    chat_ids = tok.encode_with_special(chat)
    special = set(tok.special_tokens.values())
    chart.tokens(token_spans([f"⟦{tok.display(i)}⟧" if i in special else tok.display(i) for i in chat_ids], chat_ids,
                             scope=tok.name), "tok.chat")
    n_special = sum(i in special for i in chat_ids)
    st.caption(f"Your text as the user's message in {tok.name}'s own chat template: {len(chat_ids)} tokens, "
               f"{n_special} of them special tokens (in ⟦ ⟧, e.g. `<|im_start|>` = id "
               f"{tok.special_tokens.get('<|im_start|>', '—')}). A chat model was fine-tuned on conversations in "
               "exactly this format; the final `assistant` header is where its answer would begin. Typed in the "
               "text box, the same spellings stay ordinary characters — only the template makes them special.")
    with st.expander("The template (Jinja) and its output"):
        st.code(tok.chat_template, language="jinja")
        st.code(chat, language=None)

st.subheader("Same text, four tokenizers")
names = [("this model: " + tok.name, tok)] + [(n, cache.tokenizer(n)) for n in ("gpt2", "cl100k_base", "o200k_base")]
compare = {"tokenizer": [], "vocabulary": [], "tokens": [], "characters per token": [], "first IDs": []}
for label, t in names:
    t_ids = t.encode(ctx.text)
    compare["tokenizer"].append(label)
    compare["vocabulary"].append(t.n_vocab)
    compare["tokens"].append(len(t_ids))
    compare["characters per token"].append(round(len(ctx.text) / max(len(t_ids), 1), 2))
    compare["first IDs"].append(", ".join(map(str, t_ids[:12])) + (" …" if len(t_ids) > 12 else ""))
st.dataframe(pd.DataFrame(compare), hide_index=True,
             column_config={"first IDs": st.column_config.TextColumn(width="large")})  # the "…" must show
for label, t in names[1:]:
    short = t.encode(ctx.text[:400])
    st.markdown(f"**{label}**")
    chart.tokens(token_spans([t.display(i) for i in short], short, scope=t.name), f"tok.other.{t.name}")

st.subheader("BPE step by step")
pieces = [p for p in tok.pieces(ctx.text[:2000]) if len(p.encode("utf-8", "surrogatepass")) > 1]
if tok.kind == "metaspace":
    st.info(f"{tok.name} is a SentencePiece-style BPE: it merges characters (a space written ▁), not bytes, and "
            "falls back to byte tokens <0xNN> for characters it lacks; its merges are not replayed here. The BPE you "
            "can train below shows how merging works.")
elif tok.kind != "bpe":
    st.info(f"{tok.name} is a WordPiece tokenizer: it has no merges to replay. It splits each word greedily into the "
            "longest vocabulary pieces, left to right. The BPE you can train below shows the other approach.")
elif not pieces:
    st.info("Type a longer word to watch its bytes merge.")
else:
    piece = widgets.choice("selectbox", "A piece of your text (the pre-tokenizer's split)", "tok.piece",
                           list(dict.fromkeys(pieces)), default=max(pieces, key=len), format_func=visible)
    steps = tok.merge_replay(piece)
    widgets.reset_on_change("tok.step", piece, len(steps) - 1)  # another piece starts at its last merge
    k = widgets.slider("Merge step", "tok.step", 0, len(steps) - 1, len(steps) - 1, clamp="for this piece") \
        if len(steps) > 1 else 0
    parts = steps[k].parts
    chart.tokens(token_spans([p.decode("utf-8", "backslashreplace") for p in parts], [tok.id_of(p) for p in parts],
                             scope=tok.name), "tok.merge")
    table = {
        "step": list(range(len(steps))),
        "merged (rank)": [str(s.rank) if s.rank is not None else "start: single bytes" for s in steps],
        "parts": [" | ".join(visible(p.decode("utf-8", "backslashreplace")) for p in s.parts) for s in steps],
    }
    st.dataframe(pd.DataFrame(table), hide_index=True)
    st.caption("At each step the adjacent pair with the lowest merge rank (the earliest-learned merge) is joined. "
               "The last row is exactly what the tokenizer outputs.")

st.subheader("Train your own BPE")
n_merges = widgets.slider("Merges to learn", "tok.merges", 1, 500, 50)
corpus = f"{sample_text()}\n\n{ctx.text[:5000]}"
result = cache.bpe(corpus, n_merges)
learned = len(result.merges)
widgets.reset_on_change("tok.at", str(learned), learned)  # more merges learned: show them all first
k = widgets.slider("Your text after merge", "tok.at", 0, learned, learned, clamp="for these merges") if learned else 0
own = cache.bpe_tokenizer(corpus, n_merges, k)
yours = ctx.text[:2000]
own_ids = own.encode(yours)
n_bytes = len(yours.encode("utf-8", "surrogatepass"))
c1, c2 = st.columns([2, 3])
c1.metric("Vocabulary", f"{256 + k} tokens", help="256 single bytes plus one token per merge")
c1.metric("Your text", f"{len(own_ids)} tokens", help=f"{n_bytes} bytes before any merge")
steps, counts = cache.bpe_curve(corpus, n_merges, yours)
curve = figures.lines(steps, {"tokens in your text": counts}, title="Each merge can shorten your text",
                      xtitle="merges learned", ytitle="tokens")
curve.add_vline(x=k, line_dash="dot", line_color="#dc2626")
curve.update_yaxes(rangemode="tozero", tickformat="d")  # whole tokens, from 0: one token fewer is not a cliff
chart.show(curve, key="tok.curve", where=c2)
chart.tokens(token_spans([own.display(i) for i in own_ids[:400]], own_ids[:400]), "tok.own")
st.caption(f"Learned from a short story written for Glassbox ({len(sample_text().split())} words, "
           "`assets/texts/bpe_sample.txt`) plus your text, so that common English pairs are merged even when you type "
           f"one sentence. Move the second slider to watch your text after each merge: at 0 it is {n_bytes} single "
           "bytes." + (f" Training stopped after {learned} merges: no pair of symbols occurs twice any more."
                       if learned < n_merges else ""))
st.dataframe(pd.DataFrame({
    "rank": [m.rank for m in result.merges[:k]],
    "left": [visible(m.left.decode("utf-8", "backslashreplace")) for m in result.merges[:k]],
    "right": [visible(m.right.decode("utf-8", "backslashreplace")) for m in result.merges[:k]],
    "new token": [visible(m.token.decode("utf-8", "backslashreplace")) for m in result.merges[:k]],
    "pair count": [m.count for m in result.merges[:k]],
}), hide_index=True, height=240)

st.subheader("The token tax: one sentence, many languages")
TAX = {
    "English": "The weather is nice today, so we are going to the park.",
    "German": "Das Wetter ist heute schön, also gehen wir in den Park.",
    "Spanish": "Hoy hace buen tiempo, así que vamos al parque.",
    "Russian": "Сегодня хорошая погода, поэтому мы идём в парк.",
    "Hindi": "आज मौसम अच्छा है, इसलिए हम पार्क जा रहे हैं।",
    "Chinese": "今天天气很好，所以我们去公园。",
    "Japanese": "今日は天気がいいので、公園に行きます。",
    "Arabic": "الطقس جميل اليوم، لذلك سنذهب إلى الحديقة.",
    "Swahili": "Hali ya hewa ni nzuri leo, kwa hiyo tunaenda bustanini.",
}
sentences = {"Your text": ctx.text[:300], **TAX}
tax = {"language": list(sentences), "characters": [len(s) for s in sentences.values()]}
for label, t in names:
    tax[label] = [len(t.encode(s)) for s in sentences.values()]
st.dataframe(pd.DataFrame(tax), hide_index=True)
chart.show(figures.grouped_bars(list(sentences), {label: tax[label] for label, _ in names},
                                     title="Tokens per sentence, for each tokenizer", ytitle="tokens"), key="tok.tax")
st.caption("The same meaning costs very different numbers of tokens: a tokenizer trained mostly on English text "
           "learned few merges for other scripts, so their words fall apart into many byte-level pieces — more "
           "tokens means more compute, more cost and less text fitting in the context. The first row is your own "
           "text (its first 300 characters)."
           + (f" {tok.name} is WordPiece: its counts include [CLS] and [SEP], and it has no byte pieces — a word it "
              "cannot spell becomes one [UNK], so a low count there can mean text it lost, not text it read well."
              if tok.kind == "wordpiece" else ""))
