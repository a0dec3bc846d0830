"""Embedding space: the row each token picks, the learned table in 2D/3D, neighbours, arithmetic, context."""

import pandas as pd
import streamlit as st

from core.interpret.embeddings import embedding_rows, high_byte_cluster, word_in_contexts
from core.loading import registry
from pages.common import cache, chart, figures, sidebar, texts, widgets
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
chart.show(figures.heatmap(emb[:, :shown], x=list(range(shown)), y=figures.labels(tr.tokens),
                                title=f"Token embeddings (first {shown} of {cfg.d_model} dimensions)",
                                xtitle="dimension", ytitle="token", height=max(260, 24 * len(tr.tokens) + 120),
                                robust=True), key="emb.rows")
widgets.download_csv({"token": tr.tokens, "id": tr.token_ids, **{f"d{j}": emb[:, j] for j in range(emb.shape[1])}},
                     "embeddings.csv")

if tok is None:
    st.stop()

st.subheader("The whole vocabulary, projected")
n_vocab_rows = min(cfg.vocab_size, 3000)
projection = cache.embedding_pca(ctx.model_name, ctx.device, n_vocab_rows)
dims = widgets.choice("radio", "Projection", "emb.dims", [2, 3], format_func=lambda d: f"{d}D", horizontal=True)
hover = cache.token_names(ctx.model_name, ctx.device, n_vocab_rows)
typed = list(dict.fromkeys(tr.token_ids))
placed = projection.place(embedding_rows(model, typed)).numpy()  # the typed tokens, wherever their ids are
chart.show(figures.scatter_tokens(projection.coords.numpy(), hover, placed,
                                       [visible(tok.display(i)) for i in typed], dims,
                                       title=f"PCA of {n_vocab_rows:,} token embeddings, with your tokens"), key="emb.cloud")
specials_first = any(i < 256 for i in tok.special_tokens.values())
order = ("special and unused slots, single characters, then whole words and ##pieces" if tok.kind == "wordpiece"
         else ("special tokens, then " if specials_first else "") + "single bytes, then merged tokens in the order they "
         "were learned (roughly most frequent first)")
rarer = sum(i >= n_vocab_rows for i in typed)
which = f"all {n_vocab_rows:,}" if n_vocab_rows == cfg.vocab_size else f"the first {n_vocab_rows:,}"
st.caption(f"The grey cloud is {which} IDs: {order}. The axes explain "
           f"{', '.join(f'{v:.1%}' for v in projection.explained[:dims])} of the variance."
           + (f" {rarer} of your tokens {'has a higher ID: it is' if rarer == 1 else 'have higher IDs: they are'} "
              "placed on the same axes." if rarer else ""))
cluster = high_byte_cluster(model)
if cluster and cluster[1] > 0.8:
    st.caption(texts.byte_cluster(cfg, *cluster))
st.caption("PCA keeps the directions along which the vectors vary most; two dimensions lose most of the "
           f"{cfg.d_model}, so use the neighbours below for real distances.")

st.subheader("Nearest neighbours (cosine similarity)")
choices = list(dict.fromkeys(tr.token_ids))
chosen = widgets.choice("selectbox", "Token", "emb.token", choices,
                        format_func=lambda i: f"{visible(tok.display(i))}  (id {i})")
near = cache.neighbours(ctx.model_name, ctx.device, chosen)
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
    near = cache.analogy(ctx.model_name, ctx.device, a, b, c)
    st.dataframe(pd.DataFrame({"token": [visible(tok.display(i)) for i, _ in near],
                               "cosine": [round(s, 4) for _, s in near]}), hide_index=True)
    st.caption("Famous for word2vec; in a small model's input embeddings the analogy often does not hold — "
               "that is an honest result, not a bug.")

st.subheader("The same word in two contexts")
SETUPS = {  # where the words that tell two meanings apart stand: the difference a decoder's mask makes
    "before": ("Telling words before it", "We walked along the river to the bank", "I took my money to the bank"),
    "after": ("Telling words after it", "The bank was muddy after the flood.", "The bank was closed on Sunday."),
}
setup = widgets.choice("radio", "Sentences", "emb.setup", list(SETUPS), format_func=lambda k: SETUPS[k][0],
                       horizontal=True)
for key, default in (("emb.sa", SETUPS[setup][1]), ("emb.sb", SETUPS[setup][2])):
    widgets.reset_on_change(key, setup, default)
c1, c2 = st.columns(2)
sent_a = widgets.text("text_input", "Sentence A", "emb.sa", SETUPS[setup][1], 2000, where=c1)
sent_b = widgets.text("text_input", "Sentence B", "emb.sb", SETUPS[setup][2], 2000, where=c2)
word = widgets.text("text_input", "Word to follow", "emb.word", "bank", 100)
other = registry.find(encoder=not ctx.entry.encoder)
compare = other is not None and widgets.toggle(f"Set {other.name} beside it ({other.about})", "emb.versus")
found_any = False
for col, name in zip(st.columns(2 if compare else 1), [ctx.model_name] + ([other.name] if compare else [])):
    side = cache.model(name, ctx.device)
    found = word_in_contexts(side.tokenizer, cache.traced(name, ctx.device, sent_a), sent_a,
                             cache.traced(name, ctx.device, sent_b), sent_b, word)
    if found is None:
        col.info(f"“{word.strip()}” must be a whole word in both sentences.")
        continue
    found_any = True
    cosine = found.cosine.tolist()
    kind = "encoder" if registry.get(name).encoder else "decoder"
    fig = figures.lines(["input"] + [f"after layer {i}" for i in range(len(cosine) - 1)], {name: cosine},
                        title=f"{name} ({kind}): “{word.strip()}” in A and in B, layer by layer",
                        ytitle="cosine similarity")
    fig.update_yaxes(range=[min(0.0, min(cosine) - 0.05), 1.02])  # the whole scale: a drift of 0.01 looks like one
    chart.show(fig, key=f"emb.context.{kind}", where=col)
    col.caption(texts.word_in_contexts(side.config, name, word.strip(), found))
if not found_any:
    st.caption("Cosine similarity of the word's vector in A and in B: 1 means the model holds the same vector in both.")
