"""Two models side by side on one text: what they are, how each cuts the text into tokens, what each expects next
(decoders), one chosen head of each, and how surprised each is by the text (decoders), compared per byte where their
tokens differ (core.interpret.comparison)."""

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.interpret.comparison import (
    bits_per_byte,
    byte_ends,
    config_rows,
    looks_at,
    next_token_candidates,
    partner,
    same_cuts,
    same_tokens,
)
from core.loading import registry
from core.trace import layer_pattern
from pages.common import cache, chart, errors, experiments, figures, sidebar, widgets
from pages.common.flow_graph import surprise_by_byte
from pages.common.html import surprise_spans, token_spans, visible

ctx = sidebar.context()
st.title("⚖️ Two models side by side")
widgets.need_text(ctx.text)


@dataclass
class Side:
    label: str
    model: object
    trace: object
    found: object  # core.interpret.surprisal.Surprisal, or None for an encoder

    @property
    def cfg(self):
        return self.model.config

    def name(self, i: int) -> str:
        return visible(self.model.tokenizer.display(i))


def registry_side(model_name: str) -> Side:
    """A model from the registry, fetched with a progress bar the first time, then its trace and surprisal."""
    bar = st.empty()
    try:
        registry.get(model_name).fetch(lambda frac, message: bar.progress(frac, text=message))
        loaded = cache.model(model_name, ctx.device)
    except (ConnectionError, FileNotFoundError, ValueError, OSError) as err:
        st.error(f"Could not load {model_name[:100]}: {errors.without_paths(str(err))}. Pick another model.")
        st.stop()
    finally:
        bar.empty()
    found = cache.surprise(model_name, ctx.device, ctx.text) if loaded.config.lm_head else None
    return Side(model_name, loaded, cache.traced(model_name, ctx.device, ctx.text), found)


TUNED = f"your fine-tuned copy of {registry.DEFAULT_MODEL}"
tuned = cache.fine_tuned_copy()
options = [e.name for e in registry.entries() if e.kind in ("decoder", "encoder") and e.name != ctx.model_name]
options += [TUNED] if tuned is not None else []
base = cache.model(registry.DEFAULT_MODEL, "cpu")  # the model Train it yourself fine-tunes copies of
default = TUNED if tuned is not None and ctx.model is base else partner(ctx.model_name)
other = widgets.choice("selectbox", f"Compare {ctx.model_name} (the sidebar's model) with", "two.other", options,
                       default=default)
if tuned is None:
    st.caption("Fine-tune a copy of the embedded model on *Train it yourself* to compare it here with the original.")

first = registry_side(ctx.model_name)
if other == TUNED:
    run, found = cache.fine_tuned_run(tuned[0], ctx.text)
    second = Side("fine-tuned copy", tuned[1], run, found)
else:
    second = registry_side(other)
sides = (first, second)
same = same_tokens(first.trace, second.trace)
kinds = tuple("decoder" if s.cfg.lm_head else "encoder" for s in sides)
st.markdown(experiments.two_models(first.label, second.label, kinds, same))
st.dataframe(config_rows(first.cfg, second.cfg, (first.model.num_params(), second.model.num_params()),
                         (first.label, second.label)), hide_index=True, width="stretch")

# ---------- tokens ----------
st.header("Tokens")
columns = st.columns(2)
for i, (side, where) in enumerate(zip(sides, columns)):
    where.markdown(f"**{side.label}**: {side.trace.n_tokens} tokens from a vocabulary of {side.cfg.vocab_size:,}")
    chart.tokens(token_spans(side.trace.tokens, side.trace.token_ids, show_ids=False,
                             scope=f"two{i}"), key=f"two.tokens{i}", where=where,
                 alt=f"The text cut into {side.label}'s tokens")
a, b = first.trace.n_tokens, second.trace.n_tokens
if same:
    st.caption("The same tokens with the same ids: one tokenizer.")
elif same_cuts(first.trace, second.trace):
    st.caption(f"Cut in the same places ({a} tokens each), but the ids differ: two vocabularies, "
               f"{first.cfg.vocab_size:,} and {second.cfg.vocab_size:,} tokens.")
elif a == b:
    st.caption(f"{a} tokens each, but cut in different places.")
else:
    st.caption(f"{first.label} needs {a} tokens and {second.label} {b}: {max(a, b) / min(a, b):.1f}× as many for "
               f"{first.label if a > b else second.label}.")

# ---------- next token ----------
st.header("What each expects next")
decoders = [s for s in sides if s.cfg.lm_head]
encoders = [s for s in sides if not s.cfg.lm_head]
for side in encoders:
    st.info(f"**{side.label}** is an encoder: it reads the words after each token too and has no next-token output, "
            "so it makes no guess here.", icon="ℹ️")
if len(decoders) == 2:
    rows = next_token_candidates(first.trace, first.model.tokenizer, second.trace, second.model.tokenizer)
    spelled = [visible(c.spelling.decode("utf-8", errors="backslashreplace")) for c in rows]
    series = {side.label: [c.probs[i] or 0.0 for c in rows] for i, side in enumerate(sides)}
    chart.show(figures.grouped_bars(spelled, series, title="Next-token probabilities after your text",
                                    ytitle="probability"), key="two.next")
    missing = [f"“{s}” ({sides[i].label})" for s, c in zip(spelled, rows) for i in (0, 1) if c.probs[i] is None]
    tops = [f"{s.label}: “{s.name(int(s.trace.probs.argmax()))}” ({float(s.trace.probs.max()):.0%})" for s in sides]
    st.caption("Top guesses — " + "; ".join(tops) + ". Candidates are matched by spelling."
               + (f" No token spelled so (drawn as 0): {', '.join(missing)}." if missing else ""))
elif decoders:
    side = decoders[0]
    top = side.trace.probs.topk(10)
    chart.show(figures.bars([side.name(int(i)) for i in top.indices], top.values.tolist(),
                            title=f"{side.label}: next-token probabilities after your text"), key="two.next")

# ---------- one head each ----------
st.header("One attention head of each")
columns = st.columns(2)
for i, (side, where) in enumerate(zip(sides, columns)):
    c1, c2 = where.columns(2)
    layer = widgets.slider("Layer", f"two.layer{i}", 0, side.cfg.n_layers - 1, side.cfg.n_layers // 2,
                           clamp="for this model", where=c1)
    head = widgets.slider("Head", f"two.head{i}", 0, side.cfg.n_heads - 1, 0, clamp="for this model", where=c2)
    pattern = layer_pattern(side.model, side.trace, layer)[head]  # that layer's attention, run on the kept stream
    chart.show(figures.attention_heatmap(pattern.numpy(), side.trace.tokens,
                                         title=f"{side.label}: layer {layer}, head {head}",
                                         hidden=side.trace.hidden().numpy()),
               key=f"two.attn{i}", where=where, layer=layer, head=head)
    last = side.trace.n_tokens - 1
    key, weight = looks_at(pattern, last)
    where.caption(f"The last token “{visible(side.trace.tokens[last])}” puts {weight:.0%} of this head's attention "
                  f"on “{visible(side.trace.tokens[key])}” (position {key}).")

# ---------- surprise ----------
st.header("How surprised each is by your text")
if len(decoders) < 2:
    st.info("Surprise is −log p of each token given the ones before it: a decoder's measure. "
            + " and ".join(f"**{s.label}**" for s in encoders) + (" is an encoder" if len(encoders) == 1 else
                                                                    " are encoders")
            + ", which sees the words after each token too, so only decoders are compared here.", icon="ℹ️")
for side in decoders:
    if side.trace.n_tokens < 2:
        st.info("One token has nothing before it to be predicted from: type a longer text in the sidebar.")
        st.stop()
columns = st.columns(len(decoders)) if decoders else []
for side, where in zip(decoders, columns):
    nll = side.found.nll.tolist()
    where.markdown(f"**{side.label}**")
    c = where.columns(3)
    c[0].metric("Loss per token", f"{side.found.mean_loss:.3f}")
    c[1].metric("Perplexity", f"{side.found.perplexity:.1f}")
    c[2].metric("Bits per byte", f"{bits_per_byte(side.found, side.trace.token_bytes):.3f}")
    chart.tokens(surprise_spans(side.trace.tokens, nll, [
        "the first token: nothing came before it" if t == 0 else
        f"#{t} {visible(side.trace.tokens[t])}: −log p = {nll[t]:.2f}, expected "
        + ", ".join(side.name(int(j)) for j in side.found.top_ids[t, :3].tolist())
        for t in range(side.trace.n_tokens)]), key=f"two.surprise{decoders.index(side)}", where=where,
        alt=f"The text's tokens coloured by how surprised {side.label} was by each")
if len(decoders) == 2:
    series = {s.label: (byte_ends(s.trace.token_bytes)[1:], s.found.nll[1:].tolist(),
                        [visible(t) for t in s.trace.tokens[1:]]) for s in decoders}
    chart.show(surprise_by_byte(series, "Surprise of each token, over the part of the text it covers"),
               key="two.surprise_line")
    bpb = [bits_per_byte(s.found, s.trace.token_bytes) for s in decoders]
    better = int(np.argmin(bpb))
    st.caption(("Same tokens, so the losses per token compare directly: " if same else
                "Their tokens differ, so compare bits per byte (the loss spread over the text's bytes), not the "
                "loss per token: ") + f"{decoders[better].label} is less surprised by your text ({bpb[better]:.2f} "
               f"against {bpb[1 - better]:.2f} bits per byte).")
