"""Surprise over the whole text: every token coloured by −log p under the model (what it expected instead on hover),
the text's mean loss and perplexity, and the most surprising tokens."""

import numpy as np
import streamlit as st

from pages.common import cache, chart, experiments, figures, sidebar, widgets
from pages.common.html import SURPRISE_MAX, surprise_spans, visible

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("😮 Surprise over the whole text")
widgets.need_a_decoder(cfg, lambda decoders: experiments.no_surprise(cfg, decoders))
st.markdown(experiments.surprise(cfg))
widgets.need_text(ctx.text)
found = cache.surprise(ctx.model_name, ctx.device, ctx.text)
T = len(found.token_ids)
if T < 2:
    st.info("One token has nothing before it to be predicted from: type a longer text in the sidebar.")
    st.stop()

nll = found.nll.tolist()


def hover(t: int) -> str:
    if t == 0:
        return "the first token: nothing came before it to predict it from"
    expected = ", ".join(f"“{name(i)}” {p:.1%}" for i, p in zip(found.top_ids[t].tolist(), found.top_probs[t].tolist(),
                                                               strict=True))
    return (f"#{t} {visible(found.tokens[t])}: p = {float(found.prob[t]):.2%}, −log p = {nll[t]:.2f}, "
            f"rank {int(found.rank[t])}\nexpected: {expected}")


c = st.columns(3)
c[0].metric("Mean loss (cross-entropy)", f"{found.mean_loss:.3f} nats/token")
c[1].metric("Perplexity", f"{found.perplexity:.1f}")
c[2].metric("Tokens predicted", f"{T - 1:,}")
chart.tokens(surprise_spans(found.tokens, nll, [hover(t) for t in range(T)]), key="surprise.tokens",
             alt="The text's tokens, each coloured by how surprised the model was by it")
st.caption(f"White: the model was sure (−log p near 0); full red: −log p ≥ {SURPRISE_MAX:g} (p below 1 in "
           f"{np.exp(SURPRISE_MAX):,.0f}); grey: the first token. Perplexity {found.perplexity:.1f} = e^"
           f"{found.mean_loss:.3f}: on average the model was as unsure as a fair choice among "
           f"{found.perplexity:.0f} tokens.")

fig = figures.lines(list(range(1, T)), {"−log p": nll[1:]}, title="Surprise of each token",
                    xtitle="position", ytitle="−log p (nats)")
fig.data[0].text = [visible(t) for t in found.tokens[1:]]
fig.data[0].hovertemplate = "#%{x} %{text}: %{y:.2f} nats<extra></extra>"
fig.add_hline(y=found.mean_loss, line_dash="dot", annotation_text=f"mean {found.mean_loss:.2f}")
chart.show(fig, key="surprise.line")

st.subheader("The most surprising tokens")
worst = found.most_surprising(5)
st.dataframe({"position": worst, "token": [visible(found.tokens[t]) for t in worst],
              "−log p": [round(nll[t], 2) for t in worst], "p": [f"{float(found.prob[t]):.2%}" for t in worst],
              # each token quoted: a comma token listed among commas would read as nothing
              "the model expected": ["  ".join(f"“{name(i)}”" for i in found.top_ids[t, :3].tolist()) for t in worst]},
             hide_index=True)
widgets.download_csv({"position": list(range(T)), "token": found.tokens, "neg_log_p": nll,
                      "p": found.prob.tolist(), "rank": found.rank.tolist()}, f"surprise_{cfg.name}.csv")
