"""Which words mattered: input saliency for a predicted token — gradient × input and integrated gradients — drawn on
the tokens and as bars, with the integrated gradients' completeness check shown."""

import streamlit as st

from pages.common import cache, chart, experiments, figures, sidebar, widgets
from pages.common.html import signed_spans, visible

N_MAX = 256  # tokens: every step of the path is one batch row of the whole text
COMPLETE_WITHIN = 0.05  # integrated gradients off by more than this share of the rise are called unreliable

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
reliable = found.completeness_error <= COMPLETE_WITHIN
scores, method = (ig, "integrated gradients") if reliable else (gxi, "gradient × input")
chart.tokens(signed_spans(tokens, scores, [f"#{t} {visible(s)}: integrated gradients {v:+.3f}, gradient × input "
                                           f"{g:+.3f}" for t, (s, v, g) in enumerate(zip(tokens, ig, gxi, strict=True))]),
             key="sal.tokens", alt=f"The text's tokens coloured by how much each raised or lowered the target ({method})")
difference = found.logit - found.baseline_logit
st.caption(f"Integrated gradients add up to {sum(ig):+.3f}; the logit of “{name(target)}” is {found.logit:.3f} with "
           f"your text and {found.baseline_logit:.3f} with every token made neutral, a rise of {difference:+.3f} "
           f"(the sum is off by {found.completeness_error:.2%}).")
if not reliable:
    st.warning(f"Here the integrated gradients do not add up (off by {found.completeness_error:.0%}): on the way from "
               f"the neutral input to yours, {cfg.name}'s logit for “{name(target)}” jumps by up to "
               f"{found.largest_jump:.1f} between two neighbouring steps (the whole rise is {difference:+.1f}), "
               f"too rough for {len(found.path_logits)} steps to add up. Read their scores as unreliable for this "
               "text and token; gradient × input, the slope at your text itself, needs no path: the tokens above "
               "are coloured by it.", icon="⚠️")
chart.show(figures.grouped_bars(figures.labels(tokens), {"integrated gradients": ig, "gradient × input": gxi},
                                title=f"How much each token pushed the logit of {name(target)}",
                                ytitle="contribution to the logit"), key="sal.bars")
strongest = max(range(len(scores)), key=lambda t: abs(scores[t]))
st.caption(f"The token that mattered most by {method}: “{visible(tokens[strongest])}” (position {strongest}, "
           f"{scores[strongest]:+.2f})." + (" Where the two methods disagree, the slope at the real input (gradient × "
                                             "input) is not the whole story." if reliable else ""))
widgets.download_csv({"position": list(range(len(tokens))), "token": tokens, "integrated_gradients": ig,
                      "gradient_x_input": gxi}, f"saliency_{cfg.name}.csv")
