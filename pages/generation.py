"""The generation loop and its KV cache: step by step, which keys and values are reused and which are computed, the
cache's size (and what grouped-query attention saves), and the time per token with and without the cache."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.generate import greedy, kv_cache_bytes, time_step
from core.learning import shipped_text
from core.trace import token_limit
from pages.common import cache, chart, sidebar, texts, widgets
from pages.common.html import token_spans, visible

N_NEW = 8  # tokens generated step by step
REPEATS = 5  # timed runs of one step each way: the page shows their median and range
LONG = 300  # tokens of the longer prompt timed

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer

st.title("🔁 Generation & the KV cache")
st.markdown(
    "A decoder writes one token at a time: run the model, take a next token, append it, run again. Each new token "
    "attends to every token before it, so it needs their **keys and values** in every layer. Those never change "
    "(a causal model's earlier tokens cannot see later ones), so the **KV cache** keeps them: after the first pass "
    "over the prompt (the *prefill*), each step computes q, k and v for the one new token only. **Queries are not "
    "cached**: an earlier token's query was only needed for that token's own output, already computed; only the new "
    "token's query is compared with the cached keys."
)
if not cfg.lm_head or not cfg.causal:
    st.info(f"{cfg.name} is an encoder: it does not generate, and since every token attends to every other one "
            "(later ones too), a new token would change all earlier keys' context — there is nothing to cache.",
            icon="ℹ️")
    st.stop()
widgets.need_text(ctx.text)
prompt = tok.encode(ctx.text)[-(token_limit(cfg) - N_NEW - 1):]
run = cache.remember(("greedy", ctx.model_name, ctx.device, tuple(prompt)), lambda: greedy(model, prompt, N_NEW))
step = widgets.slider("Step", "gen.step", 1, N_NEW, 1, help="1 is the prefill: the whole prompt at once")
seen = prompt + run.new_ids[: step - 1]  # what the model has read after this step
computed = len(prompt) if step == 1 else 1
chart.tokens(token_spans([tok.display(i) for i in seen], show_ids=False, mark_from=len(seen) - computed),
             "gen.tokens")
st.markdown(
    (f"**Step 1 (prefill):** all {len(prompt)} prompt tokens go through the model at once; their keys and values "
     "fill the cache." if step == 1 else
     f"**Step {step}:** only the token chosen at step {step - 1}, `{visible(tok.display(run.new_ids[step - 2]))}`, "
     f"goes through the model; the keys and values of the {len(seen) - 1} tokens before it come from the cache.")
    + f" The model then picks `{visible(tok.display(run.new_ids[step - 1]))}` (the most likely token).")
status = np.zeros((cfg.n_layers, len(seen)))
status[:, len(seen) - computed:] = 1
fig = go.Figure(go.Heatmap(z=status, x=[f"{i}: {visible(tok.display(t))}" for i, t in enumerate(seen)],
                           y=[f"layer {i}" for i in range(cfg.n_layers)], zmin=0, zmax=1, showscale=False,
                           colorscale=[[0, "#cbd5e1"], [1, "#f59e0b"]], xgap=1, ygap=1,
                           hovertemplate="%{y} · %{x}<extra></extra>"))
fig.update_layout(height=min(760, 90 + 18 * cfg.n_layers), margin=dict(l=10, r=10, t=40, b=10),
                  title=f"Keys and values at step {step}: orange computed now, grey read from the cache",
                  xaxis=dict(type="category", tickangle=-60), yaxis=dict(autorange="reversed"))
chart.show(fig, key="gen.cache")

st.subheader("How big the cache gets")
bytes_now = kv_cache_bytes(cfg, len(seen))
full = kv_cache_bytes(cfg, cfg.n_ctx)
c = st.columns(3)
c[0].metric("Cache after this step", f"{bytes_now / 2**10:,.1f} KiB", help="fp32: 4 bytes a number; 1 KiB = 1,024 bytes")
c[1].metric("Per layer", f"{bytes_now / cfg.n_layers / 2**10:,.1f} KiB")
c[2].metric(f"At the full context ({cfg.n_ctx:,} tokens)", f"{full / 2**20:,.1f} MiB", help="1 MiB = 1,048,576 bytes")
formula = (f"2 (k and v) × {cfg.n_layers} layers × {cfg.kv_heads} key/value heads × {cfg.head_dim} numbers × "
           f"{len(seen)} tokens × 4 bytes = {bytes_now:,} bytes")
if cfg.kv_heads != cfg.n_heads:
    without = bytes_now * cfg.group_size
    st.markdown(f"{formula}. With grouped-query attention its {cfg.n_heads} query heads share {cfg.kv_heads} "
                f"key/value heads, so the cache is {cfg.group_size}× smaller than with one key/value "
                f"head per query head ({without:,} bytes; {full * cfg.group_size / 2**20:,.0f} MiB at "
                "the full context).")
else:
    st.markdown(f"{formula}. Every query head has its own key/value head here (no grouped-query attention).")

st.subheader("Time per token, with and without the cache")
long_len = min(LONG, cfg.n_ctx - 1)
story = tok.encode(shipped_text())[:long_len]
measured = {}
for label, ids in (("your text", prompt), ("a story", story)):
    measured[label] = cache.remember(("timed step", ctx.model_name, ctx.device, tuple(ids), REPEATS),
                                     lambda ids=ids: time_step(model, ids, REPEATS))


def ms(spread) -> str:
    return f"{spread.median * 1000:.1f} ms ({spread.low * 1000:.1f}–{spread.high * 1000:.1f})"


rows = {"after": [], "with the KV cache": [], "recomputing everything": [], "speed-up": [], "faster": [],
        "same token": []}
for label, timing in measured.items():
    rows["after"].append(f"{label} ({timing.n_prompt} tokens)")
    rows["with the KV cache"].append(ms(timing.cached))
    rows["recomputing everything"].append(ms(timing.uncached))
    rows["speed-up"].append(f"{timing.speedup.median:.1f}× ({timing.speedup.low:.1f}–{timing.speedup.high:.1f})")
    rows["faster"].append(texts.faster(timing))
    rows["same token"].append("yes" if timing.same_tokens else "NO")
st.dataframe(rows, hide_index=True, width="stretch")
st.caption(f"The time of one step — writing the next token — each way: the median of {REPEATS} runs, with the "
           f"fastest and slowest in brackets, measured on this computer ({ctx.device}) when this page first ran for "
           "this text, after one untimed run each way. With the cache the step runs the model on the new token "
           "only; without it, on the whole text again. Where the two ranges overlap the difference is within noise. "
           + texts.kv_saving(measured["your text"], measured["a story"]))
