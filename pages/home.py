"""Home: what Glassbox is, how to use it, and which model is loaded."""

import streamlit as st

from pages.common import sidebar
from pages.common.html import visible

ctx = sidebar.context()
model = ctx.model
cfg = model.config

st.title("🔍 Glassbox — a see-through transformer")
st.markdown(
    "Type a sentence in the sidebar and watch what a real language model does with it, step by step: how the text "
    "becomes **tokens**, how each token becomes a **vector**, how the model knows **word order**, which words each "
    "**attention head** looks at, and " + ("the **probabilities** it gives to the next token" if cfg.lm_head else
                                           "the **vector** it ends with for every token (this model is an encoder: "
                                           "it predicts no next token)") +
    ". Every number on these pages is computed by the model you picked, on your text — nothing is a mock-up."
)
st.markdown(
    "**How to use it:** pick a page on the left, change the text (or choose an example) in the sidebar, and move "
    "the sliders. The address bar always holds your text and settings: copy it to share exactly this view."
)
if not cfg.encoder_decoder:  # the translator has its own page (below)
    st.page_link("pages/forward_pass.py",
                 label="**Start here: the whole forward pass of your sentence, in one picture**", icon="🧩")
st.subheader("The loaded model")
family = {"gpt2": "GPT-2 style decoder", "llama": "Llama style decoder",
          "bert": "BERT style encoder (bidirectional, no next-token head)",
          "seq2seq": "encoder–decoder, as in the original Transformer paper (translates English to French)",
          }.get(cfg.family, cfg.family)
mlp = {"gelu": "GELU", "gelu_exact": "GELU", "swiglu": "SwiGLU", "relu": "ReLU"}[cfg.mlp]
pos = {"learned": "learned positions", "rope": "rotary positions (RoPE)", "sinusoidal": "sinusoidal positions"}
cols = st.columns([2.2, 1, 1, 1.3, 1.3])  # model names are long
cols[0].metric("Model", cfg.name)
cols[1].metric("Layers", f"{cfg.n_layers} + {cfg.n_decoder_layers}" if cfg.encoder_decoder else cfg.n_layers,
               help="encoder + decoder blocks" if cfg.encoder_decoder else None)
cols[2].metric("Heads per layer", cfg.n_heads)
cols[3].metric("Parameters", f"{model.num_params() / 1e6:.2f} M")
cols[4].metric("Context (tokens)", f"{cfg.n_ctx:,}")
st.caption(
    f"{family} · {pos[cfg.positional]} · {cfg.norm}{' (post-norm)' if cfg.post_norm else ''} · {mlp} MLP · "
    f"d_model {cfg.d_model} · "
    f"vocabulary {cfg.vocab_size:,} tokens · device {ctx.device}"
)
if cfg.encoder_decoder:
    st.page_link("pages/translation.py", label="**This model translates: see it on the Translation page**", icon="🇫🇷")
elif model.tokenizer is not None and ctx.text:
    ids = model.tokenizer.encode(ctx.text)[: cfg.n_ctx]
    shown = [visible(model.tokenizer.display(i)) for i in ids[:12]]
    st.markdown(f"Your text is **{len(ids)} tokens** for this model: " + ", ".join(f"`{t}`" for t in shown)
                + (" …" if len(ids) > 12 else "") + (" (· is a space)" if any("·" in t for t in shown) else ""))
