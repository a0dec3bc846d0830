"""The only place with st.cache_*: models are loaded once per process and shared by every session; traces and
other results are cached per (model, device, text, options) with a cap on the number of entries.

Cached objects are shared between sessions and threads: callers must treat them as read-only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from core import load_tokenizer, registry, trace
from core.analysis import embedding_pca as project_embeddings
from core.analysis import head_labels, temperature_sweep, word_order_experiment
from core.bpe import after_merges, tokens_per_merge, train_bpe
from core.trace import RESIDUAL_RECORD, token_limit


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def model(name: str, device: str):
    """Reads local files only when the registry entry's `fetch` ran first (sidebar.sidebar does, with a progress
    bar)."""
    return registry.load_model(name, device=device)


@st.cache_resource(max_entries=32, show_spinner=False)
def traced(name: str, device: str, text: str, record=None, logits: str = "last", lens_top_k: int | None = None):
    """At most `token_limit` tokens: a huge paste on a big model must not record gigabytes of attention."""
    loaded = model(name, device)
    options = {"logits": logits, "lens_top_k": lens_top_k, "max_tokens": token_limit(loaded.config)}
    if record is not None:
        options["record"] = record
    return trace(loaded, text, **options)


@st.cache_resource(max_entries=1, show_spinner=False)
def long_trace(name: str, device: str, text: str):
    """The whole text, up to the model's context, with only the residual stream recorded (SmolLM2 at 8,192 tokens:
    585 MB, where every attention pattern would be 18.7 GB): any head's pattern is computed from it on demand."""
    return trace(model(name, device), text, record=RESIDUAL_RECORD, logits="none")


@st.cache_data(max_entries=16, show_spinner=False)
def long_head(name: str, device: str, text: str, layer: int, head: int, query: int):
    """One head over the whole text (core.trace.head_pattern from `long_trace`): its overview, and the weights of
    one query token over every key."""
    from core.analysis import head_overview
    from core.trace import head_pattern

    pattern = head_pattern(model(name, device), long_trace(name, device, text), layer, head)
    return head_overview(pattern), pattern[query].numpy()


@st.cache_resource(max_entries=32, show_spinner=False)
def with_attention(name: str, device: str, text: str, layer: int):
    """The text's trace plus one layer's q, k, v and scores, from one block's attention (core.trace.with_attention):
    a layer change costs a fraction of a forward pass, not a whole one."""
    from core.trace import with_attention as extend

    return extend(model(name, device), traced(name, device, text), layer)


@st.cache_data(max_entries=32, show_spinner=False)
def entropy_by_temperature(name: str, device: str, text: str, temperatures: tuple[float, ...]):
    """Entropy and top-token probability of the next-token softmax at each temperature (one sweep per text)."""
    return temperature_sweep(traced(name, device, text).logits, list(temperatures))  # the default trace, shared


@st.cache_resource(max_entries=16, show_spinner=False)
def labels(name: str, device: str, text: str):
    return head_labels(model(name, device), traced(name, device, text), sequence=sequence_scores(name, device))


@st.cache_resource(max_entries=8, show_spinner=False)
def sequence_scores(name: str, device: str):
    """Text-independent head scores, once per model (not again for every new text)."""
    from core.analysis import sequence_scores as scores

    return scores(model(name, device))


@st.cache_resource(max_entries=16, show_spinner="Running the word-order experiment…")
def order_experiment(name: str, device: str, text: str, seed: int):
    loaded = model(name, device)
    ids = loaded.tokenizer.encode(text)[: token_limit(loaded.config)]
    return word_order_experiment(loaded, ids, seed)


@st.cache_resource(max_entries=4, show_spinner="Projecting the embedding table…")
def embedding_pca(name: str, device: str, n_tokens: int):
    """PCA of the first n_tokens rows of the token-embedding table (low ids = earliest merges = most frequent)."""
    return project_embeddings(model(name, device), n_tokens)


@st.cache_resource(max_entries=2, show_spinner=False)
def tokenizer(name: str):
    return load_tokenizer(name)


@st.cache_resource(max_entries=16, show_spinner=False)
def bpe(text: str, n_merges: int):
    return train_bpe(text, n_merges)


@st.cache_resource(max_entries=16, show_spinner=False)
def bpe_tokenizer(text: str, n_merges: int, k: int):
    """The tokenizer of `bpe(text, n_merges)` stopped after its first k merges."""
    return after_merges(bpe(text, n_merges), k).tokenizer("yours")


@st.cache_data(max_entries=16, show_spinner=False)
def bpe_curve(text: str, n_merges: int, sentence: str):
    return tokens_per_merge(bpe(text, n_merges), sentence)


@st.cache_resource(max_entries=12, show_spinner="Loading a training snapshot…")
def snapshot(name: str, step: int):
    return registry.get(name).history.load(step, device="cpu")


@st.cache_resource(max_entries=64, show_spinner=False)
def snapshot_trace(name: str, step: int, text: str):
    return trace(snapshot(name, step), text)




@st.cache_resource(max_entries=16, show_spinner="Following the text through every block…")
def forward_summary(name: str, device: str, text: str, window: int):
    from core.analysis import forward_summary as summarise

    loaded = model(name, device)
    return summarise(loaded, loaded.tokenizer.encode(text)[: token_limit(loaded.config)], window=window, lens_k=0)


@st.cache_resource(max_entries=64, show_spinner=False)
def stage_lens(name: str, device: str, text: str, window: int, pos: int):
    """The logit lens for the one token the page follows (all tokens would be 24× the work: on SmolLM2 ~2 s)."""
    from core.analysis import stage_lens as lens

    return lens(model(name, device), forward_summary(name, device, text, window), pos)


@st.cache_resource(max_entries=2, show_spinner="Running the 50 example sentences through the model…")
def neuron_examples(name: str, device: str):
    """Every MLP layer's activations over the shipped example sentences (assets/texts/neuron_sentences.txt): ~50 MB
    for SmolLM2, once per model."""
    from core.analysis import example_sentences
    from core.analysis import neuron_examples as examples

    return examples(model(name, device), example_sentences())


@st.cache_resource(max_entries=32, show_spinner=False)
def ablated(name: str, device: str, text: str, heads: tuple[tuple[int, int], ...], mlps: tuple[int, ...]):
    """The text traced with some heads / MLP layers switched off (last-position logits only)."""
    loaded = model(name, device)
    return trace(loaded, text, record=(), max_tokens=token_limit(loaded.config),
                 ablate={"heads": list(heads), "mlps": list(mlps)})


@st.cache_resource(max_entries=32, show_spinner=False)
def output_change(name: str, device: str, text: str, heads: tuple[tuple[int, int], ...], mlps: tuple[int, ...]):
    """An encoder's final vectors with and without some parts: cosine per token (core.analysis.output_change)."""
    from core.analysis import output_change as change

    loaded = model(name, device)
    ids = loaded.tokenizer.encode(text)[: token_limit(loaded.config)]
    return change(loaded, ids, {"heads": list(heads), "mlps": list(mlps)})


@st.cache_resource(max_entries=32, show_spinner=False)
def attribution(name: str, device: str, text: str, token_id: int):
    from core.analysis import ATTRIBUTION_RECORD, logit_attribution

    loaded = model(name, device)
    tr = trace(loaded, text, record=ATTRIBUTION_RECORD, max_tokens=token_limit(loaded.config))
    return logit_attribution(loaded, tr, token_id)


@st.cache_resource(show_spinner=False)
def _shelf() -> dict:
    return {"store": OrderedDict(), "lock": threading.Lock()}


def remember(key: tuple, make, max_entries: int = 4):
    """Results too slow for every rerun that are drawn while they are computed (training with a live loss curve,
    which st.cache_* cannot replay): kept per process, the latest `max_entries`, keyed by everything they depend on
    (training is seeded: same key, same result). `make` runs outside any lock; two sessions asking at once both
    compute."""
    shelf = _shelf()
    with shelf["lock"]:
        if key in shelf["store"]:
            shelf["store"].move_to_end(key)
            return shelf["store"][key]
    value = make()
    with shelf["lock"]:
        shelf["store"][key] = value
        while len(shelf["store"]) > max_entries:
            shelf["store"].popitem(last=False)
    return value


def recalled(key: tuple):
    """What `remember` holds for `key`, or None."""
    shelf = _shelf()
    with shelf["lock"]:
        return shelf["store"].get(key)


@st.cache_resource(max_entries=64, show_spinner=False)
def translation(name: str, device: str, text: str):
    """core.seq2seq.translate; raises ValueError (unknown words, empty, too long), which is not cached."""
    from core.seq2seq import translate

    return translate(model(name, device), text)


@st.cache_resource(max_entries=64, show_spinner=False)
def teacher_forced(name: str, device: str, text: str, reference: tuple[str, ...]):
    from core.seq2seq import teacher_forced as forced

    return forced(model(name, device), text, list(reference))


@st.cache_data(max_entries=128, show_spinner=False)
def continue_after(name: str, device: str, text: str, prefix: tuple[str, ...]) -> list[str]:
    from core.seq2seq import continue_after as cont

    return cont(model(name, device), text, list(prefix))


@st.cache_data(max_entries=32, show_spinner=False)
def snapshot_translations(name: str, text: str) -> list[tuple[int, str]]:
    """What each training snapshot writes for `text` (the last step is the shipped model)."""
    from core.seq2seq import translate

    return [(step, translate(snapshot(name, step), text).text) for step in registry.get(name).history.steps]


@st.cache_resource(max_entries=16, show_spinner="Running your text through the model…")
def lesson(name: str, device: str, text: str):
    """The guided lesson's numbers (core.lesson) for one text: one recorded forward pass, shared by its steps."""
    from core.lesson import lesson as gather

    loaded = model(name, device)
    return gather(loaded, text, max_tokens=token_limit(loaded.config))
