"""Which words mattered: input saliency for a predicted token — gradient × input and integrated gradients — drawn on
the tokens and as bars, with the integrated gradients' completeness check shown."""

import streamlit as st

from pages.common import cache, chart, experiments, figures, sidebar, widgets
from pages.common.html import signed_spans, visible

N_MAX = 256  # tokens: every step of the path is one batch row of the whole text

ctx = sidebar.context()
model = ctx.model
cfg, tok = model.config, model.tokenizer
name = (lambda i: visible(tok.display(i))) if tok else str

st.title("🔦 Which words mattered")
widgets.need_a_decoder(cfg, lambda decoders: experiments.no_causal_target(cfg, "word scores", decoders))
st.markdown(experiments.saliency(cfg, N_MAX))
widgets.need_text(ctx.text)
tr = ctx.trace()
if tr.n_tokens > N_MAX:
    st.info(f"This view reads texts of up to {N_MAX} tokens (every step from the neutral input runs the whole text "
            f"once more); yours has {tr.n_tokens}. Shorten the text in the sidebar.", icon="✂️")
    st.stop()
top = tr.probs.topk(10).indices.tolist()
target = widgets.choice("selectbox", "Predicted token to explain", "sal.target", top, default=top[0],
                        format_func=lambda i: f"{name(i)} ({float(tr.probs[i]):.1%})")
found = cache.word_saliency(ctx.model_name, ctx.device, ctx.text, target)
tokens = tr.tokens[: len(found.integrated)]
ig, gxi = found.integrated.tolist(), found.grad_x_input.tolist()
chart.tokens(signed_spans(tokens, ig, [f"#{t} {visible(s)}: integrated gradients {v:+.3f}, gradient × input "
                                       f"{g:+.3f}" for t, (s, v, g) in enumerate(zip(tokens, ig, gxi, strict=True))]),
             key="sal.tokens", alt="The text's tokens coloured by how much each raised or lowered the target")
difference = found.logit - found.baseline_logit
st.caption(f"Integrated gradients add up to {sum(ig):+.3f}; the logit of {name(target)} is {found.logit:.3f} with "
           f"your text and {found.baseline_logit:.3f} with every token made neutral, a rise of {difference:+.3f} "
           f"(the sum is off by {found.completeness_error:.2%}).")
chart.show(figures.grouped_bars(figures.labels(tokens), {"integrated gradients": ig, "gradient × input": gxi},
                                title=f"How much each token pushed the logit of {name(target)}",
                                ytitle="contribution to the logit"), key="sal.bars")
strongest = max(range(len(ig)), key=lambda t: abs(ig[t]))
st.caption(f"The token that mattered most: “{visible(tokens[strongest])}” (position {strongest}, {ig[strongest]:+.2f}). "
           "Where the two methods disagree, the slope at the real input (gradient × input) is not the whole story.")
widgets.download_csv({"position": list(range(len(tokens))), "token": tokens, "integrated_gradients": ig,
                      "gradient_x_input": gxi}, f"saliency_{cfg.name}.csv")
