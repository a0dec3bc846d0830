"""Embedding space: the row each token picks, the learned table in 2D/3D, neighbours, arithmetic, context."""

import pandas as pd
import streamlit as st

from core.analysis import analogy, layerwise_cosine, token_neighbours
from pages.common import cache, figures, sidebar, texts, widgets
from pages.common.html import visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer

st.title("🧭 Embedding space")
st.markdown(texts.embeddings(cfg))
widgets.need_text(ctx.text)
tr = ctx.trace()
emb = tr.embed().numpy()  # (T, d): the rows the model looked up

st.subheader("The embedding row each token picks")
shown = min(emb.shape[1], 256)
st.plotly_chart(figures.heatmap(emb[:, :shown], x=list(range(shown)), y=figures.labels(tr.tokens),
                                title=f"Token embeddings (first {shown} of {cfg.d_model} dimensions)",
                                xtitle="dimension", ytitle="token", height=max(260, 24 * len(tr.tokens) + 120),
                                robust=True),
                width="stretch")
widgets.download_csv({"token": tr.tokens, "id": tr.token_ids, **{f"d{j}": emb[:, j] for j in range(emb.shape[1])}},
                     "embeddings.csv")

if tok is None:
    st.stop()

st.subheader("The whole vocabulary, projected")
n_vocab_rows = min(cfg.vocab_size, 3000)
coords, explained = cache.embedding_pca(ctx.model_name, ctx.device, n_vocab_rows)
dims = widgets.choice("radio", "Projection", "emb.dims", [2, 3], format_func=lambda d: f"{d}D", horizontal=True)
hover = [visible(tok.display(i)) for i in range(n_vocab_rows)]
highlight = {i: visible(tok.display(i)) for i in tr.token_ids if i < n_vocab_rows}
st.plotly_chart(figures.scatter_tokens(coords.numpy(), hover, highlight, dims,
                                       title=f"PCA of {n_vocab_rows:,} token embeddings"), width="stretch")
order = ("special and unused slots, single characters, then whole words and ##pieces" if tok.kind == "wordpiece"
         else "special tokens and single bytes, then merged tokens in the order they were learned (roughly most "
         "frequent first)")
st.caption(f"The first {n_vocab_rows:,} IDs: {order}. The axes explain "
           f"{', '.join(f'{v:.1%}' for v in explained[:dims])} of "
           "the variance.")
missing = [t for t, i in zip(tr.tokens, tr.token_ids) if i >= n_vocab_rows]
if missing:
    st.caption(f"Not in the projected set (rarer tokens): {', '.join(visible(t) for t in missing[:10])}")
st.caption("PCA keeps the directions along which the vectors vary most; two dimensions lose most of the "
           f"{cfg.d_model}, so use the neighbours below for real distances.")

st.subheader("Nearest neighbours (cosine similarity)")
choices = list(dict.fromkeys(tr.token_ids))
chosen = widgets.choice("selectbox", "Token", "emb.token", choices,
                        format_func=lambda i: f"{visible(tok.display(i))}  (id {i})")
near = token_neighbours(model, chosen, k=10)
st.dataframe(pd.DataFrame({"token": [visible(tok.display(i)) for i, _ in near], "id": [i for i, _ in near],
                           "cosine": [round(s, 4) for _, s in near]}), hide_index=True)

st.subheader("Vector arithmetic: a − b + c")
c1, c2, c3 = st.columns(3)
words = [widgets.text("text_input", name, f"emb.{name}", default, 100, where=col)
         for name, default, col in (("a", " girl", c1), ("b", " boy", c2), ("c", " he", c3))]
enc = [tok.encode_fragment(w) for w in words]
if any(len(e) != 1 for e in enc):
    bad = [w for w, e in zip(words, enc) if len(e) != 1]
    st.info(f"Each of a, b, c must be a single token for this tokenizer; these are not: {', '.join(map(repr, bad))}. "
            "Tip: most words start with a space (' king').")
else:
    a, b, c = (e[0] for e in enc)
    near = analogy(model, a, b, c, k=8)
    st.dataframe(pd.DataFrame({"token": [visible(tok.display(i)) for i, _ in near],
                               "cosine": [round(s, 4) for _, s in near]}), hide_index=True)
    st.caption("Famous for word2vec; in a small model's input embeddings the analogy often does not hold — "
               "that is an honest result, not a bug.")

st.subheader("The same word in two contexts")
c1, c2 = st.columns(2)
sent_a = widgets.text("text_input", "Sentence A", "emb.sa", "I went to the bank to deposit money.", 2000, where=c1)
sent_b = widgets.text("text_input", "Sentence B", "emb.sb", "I sat on the bank of the river.", 2000, where=c2)
word = widgets.text("text_input", "Word to follow", "emb.word", " bank", 100)
word_ids = tok.encode_fragment(word)
if not (sent_a and sent_b and word_ids):
    st.info("Type two sentences and a word that occurs in both.")
    st.stop()
ta, tb = ctx.trace(sent_a), ctx.trace(sent_b)
first = word_ids[0]
if first not in ta.token_ids or first not in tb.token_ids:
    st.info(f"The token {visible(tok.display(first))!r} must occur in both sentences (mind the leading space).")
    st.stop()
pa, pb = ta.token_ids.index(first), tb.token_ids.index(first)
sims = layerwise_cosine(ta, pa, tb, pb).tolist()
layers = ["embedding"] + [f"after layer {i}" for i in range(cfg.n_layers)]
st.plotly_chart(figures.lines(layers, {f"cosine({visible(tok.display(first))!r} in A, in B)": sims},
                              title="Identical at the input, pulled apart by context", ytitle="cosine similarity"),
                width="stretch")
st.caption("At the input both vectors are the same row of the table (plus the position vector, if the position "
           "differs). Each layer mixes in the surrounding words through attention, so the vectors drift apart.")
