"""The only place with caches. Everything big that the server keeps between page runs — models, traces, whole-text
residual streams, patterns, neuron tables, trainings — is kept in core.budget's one Store, within the process's
memory budget (evicted least recently used, by size), and every computation that makes it runs through core.jobs'
gate (at most one per core at once, the others told their place in the queue). Small results use st.cache_data.

One trace per (model, device, text), keeping the embedding stage and the residual stream: a view that needs more
asks `traced(..., record=…)` and the trace GROWS (core.trace.grow: only the blocks that own the missing names run
again), it is never run again. What a page asks on every run (one layer's feed-forward, the norms) is kept in the
grown trace; what a kept result needs once (the lesson, the flow, attribution, one layer's attention) is a grown COPY
(`grown`), kept apart in the store and evicted on its own, so the shared trace stays a thin residual stream.

Cached objects are shared between sessions and threads: callers must treat them as read-only.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable

import streamlit as st

from core import budget, jobs, load_tokenizer, trace
from core.bpe import after_merges, tokens_per_merge, train_bpe
from core.generate import temperature_sweep
from core.interpret.attribution import ATTRIBUTION_RECORD
from core.interpret.embeddings import embedding_pca as project_embeddings
from core.interpret.heads import head_labels
from core.interpret.lens import SUMMARY_RECORD
from core.interpret.positions import word_order_experiment
from core.loading import registry
from core.model import DEFAULT_RECORD, PATTERN_RECORD, Recorder
from core.trace import attention_record, checkpoint_record, grow, pattern_bytes, recording_bytes, token_limit


def _wait_notice(spinner: str | None) -> Callable[[int, float], None]:
    """Tells the learner their place in the queue while their work waits for a free core."""
    box = st.empty()

    def show(place: int, waited: float) -> None:
        ahead = place - 1
        who = "1 learner's work is" if ahead == 1 else f"{ahead} learners' work is"
        box.info(f"⏳ Waiting for the server: {who} ahead of yours ({waited:.0f} s so far). "
                 f"{spinner or 'Your result'} starts when a core is free (leaving this page gives up your place).")

    show.box = box
    return show


def compute(work: Callable[[], object], spinner: str | None = None, long: bool = False):
    """Run heavy work through the process's gate, with the learner told their place while it waits and a spinner
    while it runs."""
    notice = _wait_notice(spinner)

    def run():
        notice.box.empty()
        if spinner is None:
            return work()
        with st.spinner(spinner):
            return work()

    try:
        return jobs.gate.run(run, long=long, on_wait=notice)
    finally:
        notice.box.empty()


def kept(spinner: str | None = None, long: bool = False, estimate: Callable[..., int] | None = None,
         what: str = "this", pin: bool = False):
    """Like st.cache_resource, but kept in core.budget.store within the memory budget, and made through the gate:
    a result already kept is returned at once (never queued); identical work asked by several sessions runs once.
    `estimate(*args)`: the bytes it will keep, checked against the budget before any work starts."""

    def wrap(fn):
        @functools.wraps(fn)
        def cached(*args):
            key = (fn.__module__, fn.__qualname__, *map(_frozen, args))
            value = budget.store.peek(key, _MISSING)
            if value is not _MISSING:
                return value
            size = estimate(*args) if estimate is not None else 0
            return compute(lambda: budget.store.get(key, lambda: fn(*args), estimate=size, what=what, pin=pin), spinner,
                           long)

        return cached

    return wrap


_MISSING = object()


def _frozen(value):
    """A hashable key part: lists (token ids, layer lists) become tuples."""
    return tuple(map(_frozen, value)) if isinstance(value, (list, tuple)) else value


@kept(spinner="Loading the model…", what="this model", pin=True)
def model(name: str, device: str):
    """Reads local files only when the registry entry's `fetch` ran first (sidebar.sidebar does, with a progress
    bar)."""
    return registry.load_model(name, device=device)


def token_census(name: str, device: str, text: str) -> tuple[int, int]:
    """How many tokens the whole text is, and how many of them are pieces of a character written in several bytes
    (core.tokenizer.character_pieces): what the sidebar says on every rerun of every page, counted once per text.
    Kept in the store but made outside the gate: light work (a tokenizer pass) never waits behind forward passes."""
    from core.tokenizer import character_pieces

    def count() -> tuple[int, int]:
        tok = model(name, device).tokenizer
        ids = tok.encode(text)
        return len(ids), character_pieces(tok, ids)

    # keyed by the text's digest: the store counts values' bytes, and this value is 2 numbers beside a text of up to
    # 40,000 characters
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return budget.store.get((__name__, "token_census", name, device, digest), count)


def n_tokens(name: str, device: str, text: str | list[int], limit: int | None = None) -> int:
    """How many tokens of `text` a view traces: at most `token_limit` (a huge paste on a big model must not record
    gigabytes of attention), or `limit`."""
    loaded = model(name, device)
    ids = text if isinstance(text, (list, tuple)) else loaded.tokenizer.encode(text)
    return min(len(ids), limit or token_limit(loaded.config))


SMALL_PATTERNS = 4_000_000  # bytes: every layer's attention weights recorded in the first forward pass up to this
SMALL_ADDS = 8_000_000  # bytes: every block's adds recorded in the first forward pass up to this
# What each block adds to the stream (after attention, its heads' outputs, after the feed-forward layer) beside the
# stream: what the Forward pass page, its architecture picture, the lesson and the logit attribution read.
EVERY_ADD = tuple(name for name in dict.fromkeys(SUMMARY_RECORD + ATTRIBUTION_RECORD) if name not in DEFAULT_RECORD)


def _first_record(cfg, n: int) -> tuple[str, ...]:
    """What the text's one forward pass records: the residual stream (DEFAULT_RECORD), every attention pattern when
    they are small (SmolLM2 up to 60 tokens, MiniLM up to 117, the embedded model's whole 256) and every block's adds
    when they are (SmolLM2 up to 28 tokens; recording them costs the forward nothing measurable) — a typed sentence's
    views then need no block run again (the Forward pass page ran every block twice); a longer text's are computed
    from the stream when shown (core.trace.grow, core.trace.layer_pattern), never all kept."""
    record = DEFAULT_RECORD + (PATTERN_RECORD,) * (pattern_bytes(cfg, n) <= SMALL_PATTERNS)
    return record + EVERY_ADD * (recording_bytes(cfg, Recorder(EVERY_ADD), n) <= SMALL_ADDS)


def _trace_bytes(name: str, device: str, text: str) -> int:
    cfg, n = model(name, device).config, n_tokens(name, device, text)
    return recording_bytes(cfg, Recorder(_first_record(cfg, n)), n)


@kept(estimate=_trace_bytes, what="tracing this text")
def _first_trace(name: str, device: str, text: str):
    loaded = model(name, device)
    return trace(loaded, text, record=_first_record(loaded.config, n_tokens(name, device, text)),
                 max_tokens=token_limit(loaded.config))


def traced(name: str, device: str, text: str, record: Iterable[str] = (), logits: str = "last",
           lens_top_k: int | None = None):
    """THE trace of a text: one forward pass per (model, device, text), at most `token_limit` tokens. `record`,
    logits="all" and `lens_top_k` grow it (core.trace.grow: only what is missing is computed, from what it kept)
    and the grown trace replaces the kept one, so every later view finds it."""
    tr = _first_trace(name, device, text)
    if not tr.lacks(record, logits, lens_top_k):
        return tr
    key = (__name__, "_first_trace", name, device, _frozen(text))
    loaded = model(name, device)

    def grow_kept():
        latest = budget.store.peek(key) or tr
        bigger = grow(loaded, latest, record, logits, lens_top_k)
        if bigger is not latest:
            budget.store.put(key, bigger)
        return bigger

    return compute(grow_kept)


def long_trace_bytes(name: str, device: str, text: str) -> int:
    """What `long_trace` keeps: the residual stream of the whole text (up to the model's context) entering every
    CHECKPOINT_EVERY-th block."""
    cfg = model(name, device).config
    return recording_bytes(cfg, Recorder(checkpoint_record(cfg)), n_tokens(name, device, text, cfg.n_ctx))


@kept(long=True, what="the whole text's residual stream", estimate=long_trace_bytes)
def long_trace(name: str, device: str, text: str):
    """The whole text, up to the model's context, with the residual stream recorded entering every
    CHECKPOINT_EVERY-th block (SmolLM2 at 8,192 tokens: 94 MB, where every block's stream would be 585 MB and every
    attention pattern 18.7 GB): any head's pattern is computed from it on demand."""
    loaded = model(name, device)
    return trace(loaded, text, record=checkpoint_record(loaded.config), logits="none")


def _stream_bytes(name: str, device: str, text: str, layer: int) -> int:
    cfg = model(name, device).config
    return n_tokens(name, device, text, cfg.n_ctx) * cfg.d_model * 4


@kept(long=True, what="the stream entering this layer", estimate=_stream_bytes)
def long_stream(name: str, device: str, text: str, layer: int):
    """(T, d) the whole text's stream entering `layer` (core.trace.stream_into: the blocks after the checkpoint
    below it run again, at most CHECKPOINT_EVERY - 1 of them), kept while the learner looks at that layer."""
    from core.trace import stream_into

    return stream_into(model(name, device), long_trace(name, device, text), layer)


@kept(long=True)
def long_head(name: str, device: str, text: str, layer: int, head: int, query: int):
    """One head over the whole text (core.trace.head_pattern from `long_stream`): its overview, and the weights of
    one query token over every key."""
    from core.interpret.heads import head_overview
    from core.trace import head_pattern

    loaded = model(name, device)
    pattern = head_pattern(loaded, long_trace(name, device, text), layer, head,
                           stream=long_stream(name, device, text, layer))
    return head_overview(pattern), pattern[query].numpy().copy()  # a copy: a view would keep the (T, T) pattern


def grown(name: str, device: str, text: str, record: tuple[str, ...]):
    """The text's trace with `record` in it: the shared trace itself when its one forward pass recorded it (a short
    text, see _first_record), else a copy grown by it (core.trace.grow), kept apart from the shared trace: what one
    view reads (one layer's attention, every block's adds) is evicted with that view's use, and the trace every
    page shares stays the residual stream."""
    tr = _first_trace(name, device, text)
    return tr if not tr.lacks(record) else _grown(name, device, text, record)


@kept()
def _grown(name: str, device: str, text: str, record: tuple[str, ...]):
    tr = _first_trace(name, device, text)
    return grow(model(name, device), budget.store.peek((__name__, "_first_trace", name, device, _frozen(text))) or tr,
                record)


def with_attention(name: str, device: str, text: str, layer: int):
    """The text's trace grown by one layer's q, k, v, scores, pattern and z (core.trace.attention_record): one block
    run again, a fraction of a forward pass, kept per layer (stepping through the layers does not pile every layer's
    T² scores into the shared trace)."""
    return grown(name, device, text, attention_record(layer))


@kept()
def pattern(name: str, device: str, text: str, layer: int):
    """(heads, T, T) one layer's attention weights on the text (core.trace.layer_pattern: that layer's attention
    run again on the stream the trace kept)."""
    from core.trace import layer_pattern

    return layer_pattern(model(name, device), traced(name, device, text), layer)


@kept()
def pattern_grid(name: str, device: str, text: str, rows: int):
    """Every layer's weights over the text's first `rows` tokens, as numpy (heads, rows, rows) per layer: for a
    causal model only those tokens run through each layer's attention (core.trace.layer_pattern)."""
    from core.trace import layer_patterns

    return [p.numpy() for p in layer_patterns(model(name, device), traced(name, device, text), rows)]


@kept()
def entropy_by_temperature(name: str, device: str, text: str, temperatures: tuple[float, ...]):
    """Entropy and top-token probability of the next-token softmax at each temperature (one sweep per text)."""
    return temperature_sweep(traced(name, device, text).logits, list(temperatures))  # the default trace, shared


@kept()
def labels(name: str, device: str, text: str):
    return head_labels(model(name, device), traced(name, device, text), sequence=sequence_scores(name, device))


@kept()
def sequence_scores(name: str, device: str):
    """Text-independent head scores, once per model (not again for every new text)."""
    from core.interpret.heads import sequence_scores as scores

    return scores(model(name, device))


@kept(spinner="Running the word-order experiment…")
def order_experiment(name: str, device: str, text: str, seed: int):
    return word_order_experiment(model(name, device), traced(name, device, text), seed)


@kept(spinner="Projecting the embedding table…")
def embedding_pca(name: str, device: str, n_tokens: int):
    """PCA of the first n_tokens rows of the token-embedding table (low ids = earliest merges = most frequent)."""
    return project_embeddings(model(name, device), n_tokens)


@kept()
def token_names(name: str, device: str, n_tokens: int) -> list[str]:
    """The first n_tokens ids as a learner reads them (whitespace made visible): the projection's hover labels, the
    same for every text."""
    from pages.common.html import visible

    tok = model(name, device).tokenizer
    return [visible(tok.display(i)) for i in range(n_tokens)]


@kept()
def neighbours(name: str, device: str, token_id: int, k: int = 10) -> list[tuple[int, float]]:
    """core.interpret.embeddings.token_neighbours, kept per token: a cosine against every row of the table."""
    from core.interpret.embeddings import token_neighbours

    return token_neighbours(model(name, device), token_id, k=k)


@kept()
def analogy(name: str, device: str, a: int, b: int, c: int, k: int = 8) -> list[tuple[int, float]]:
    """core.interpret.embeddings.analogy, kept per (a, b, c): it does not depend on the text."""
    from core.interpret.embeddings import analogy as nearest

    return nearest(model(name, device), a, b, c, k=k)


@st.cache_resource(max_entries=2, show_spinner=False)
def tokenizer(name: str):
    return load_tokenizer(name)


@kept()
def bpe(text: str, n_merges: int):
    return train_bpe(text, n_merges)


@kept()
def bpe_tokenizer(text: str, n_merges: int, k: int):
    """The tokenizer of `bpe(text, n_merges)` stopped after its first k merges."""
    return after_merges(bpe(text, n_merges), k).tokenizer("yours")


@st.cache_data(max_entries=16, show_spinner=False)
def bpe_curve(text: str, n_merges: int, sentence: str):
    return tokens_per_merge(bpe(text, n_merges), sentence)


@kept(spinner="Loading a training snapshot…")
def snapshot(name: str, step: int):
    return registry.get(name).history.load(step, device="cpu")


@kept()
def snapshot_trace(name: str, step: int, text: str):
    return trace(snapshot(name, step), text)




@kept(spinner="Following the text through every block…")
def forward_summary(name: str, device: str, text: str, window: int):
    """core.interpret.lens.forward_summary, from the same grown copy (every block's adds) as the architecture
    picture on the same page: the blocks run again once per text, not once for each (py-spy: 0.3 s a run)."""
    from core.interpret.lens import forward_summary as summarise

    return summarise(model(name, device), grown(name, device, text, SUMMARY_RECORD), window=window, lens_k=0)


@kept()
def stage_lens(name: str, device: str, text: str, window: int, pos: int):
    """The logit lens for the one token the page follows (all tokens would be 24× the work: on SmolLM2 ~2 s)."""
    from core.interpret.lens import stage_lens as lens

    return lens(model(name, device), forward_summary(name, device, text, window), pos)


@kept(spinner="Running the 50 example sentences through the model…")
def neuron_examples(name: str, device: str):
    """Every MLP layer's activations over the shipped example sentences (assets/texts/neuron_sentences.txt): ~50 MB
    for SmolLM2, once per model."""
    from core.interpret.neurons import example_sentences
    from core.interpret.neurons import neuron_examples as examples

    return examples(model(name, device), example_sentences())


@kept()
def ablated(name: str, device: str, text: str, heads: tuple[tuple[int, int], ...], mlps: tuple[int, ...]):
    """The text traced with some heads / MLP layers switched off (last-position logits only)."""
    loaded = model(name, device)
    return trace(loaded, text, record=(), max_tokens=token_limit(loaded.config),
                 ablate={"heads": list(heads), "mlps": list(mlps)})


@kept()
def output_change(name: str, device: str, text: str, heads: tuple[tuple[int, int], ...], mlps: tuple[int, ...]):
    """An encoder's final vectors with and without some parts: cosine per token (core.interpret.heads.output_change)."""
    from core.interpret.heads import output_change as change

    loaded = model(name, device)
    ids = loaded.tokenizer.encode(text)[: token_limit(loaded.config)]
    return change(loaded, ids, {"heads": list(heads), "mlps": list(mlps)})


@kept()
def attribution(name: str, device: str, text: str, token_id: int):
    from core.interpret.attribution import logit_attribution

    return logit_attribution(model(name, device), grown(name, device, text, ATTRIBUTION_RECORD), token_id)


def remember(key: tuple, make: Callable[[], object], long: bool = True):
    """Results drawn while they are computed (training with a live loss curve, which no cache can replay), kept in
    the store within the memory budget and keyed by everything they depend on (training is seeded: same key, same
    result). Made through the gate as long work; two sessions asking for the same key at once compute it once."""
    full = (__name__, "remember", *key)
    value = budget.store.peek(full, _MISSING)
    if value is not _MISSING:
        return value
    return compute(lambda: budget.store.get(full, make, what="this run"), long=long)


def recalled(key: tuple):
    """What `remember` holds for `key`, or None."""
    return budget.store.peek((__name__, "remember", *key))


@kept()
def translation(name: str, device: str, text: str):
    """core.seq2seq.translate; raises ValueError (unknown words, empty, too long), which is not cached."""
    from core.seq2seq import translate

    return translate(model(name, device), text)


@kept()
def teacher_forced(name: str, device: str, text: str, reference: tuple[str, ...]):
    from core.seq2seq import teacher_forced as forced

    return forced(model(name, device), text, list(reference))


@kept()
def continue_after(name: str, device: str, text: str, prefix: tuple[str, ...]) -> list[str]:
    from core.seq2seq import continue_after as cont

    return cont(model(name, device), text, list(prefix))


@kept()
def snapshot_translations(name: str, text: str) -> list[tuple[int, str]]:
    """What each training snapshot writes for `text` (the last step is the shipped model)."""
    from core.seq2seq import translate

    return [(step, translate(snapshot(name, step), text).text) for step in registry.get(name).history.steps]


@kept(spinner="Running your text through the model…")
def lesson(name: str, device: str, text: str):
    """The guided lesson's numbers (core.lesson) for one text, from the text's one trace grown with what the lesson
    reads (inside core.lesson.lesson; the grown copy is not kept: the lesson is made once per text)."""
    from core.lesson import lesson as gather

    return gather(model(name, device), traced(name, device, text))


# --- causal experiments: activation patching, steering, surprise (core.interventions, core.interpret.surprisal) ---


@kept(spinner="Patching every layer at every position…")
def patch_grid(name: str, device: str, clean: str, corrupt: str, target: int):
    """(n_layers, T) P(target) after each single patch (core.patch_sweep), as numpy."""
    from core import patch_sweep

    return patch_sweep(model(name, device), clean, corrupt, target).numpy()


@kept()
def patched(name: str, device: str, clean: str, corrupt: str, layer: int, position: int):
    """The corrupted sentence traced with one patch from the clean one's trace (last-position logits only)."""
    return trace(model(name, device), corrupt, record=(),
                 patch={"layer": layer, "position": position, "source": traced(name, device, clean)})


@kept()
def steering_vector(name: str, device: str, positive: str, negative: str, layer: int):
    """(d,) positive − negative residual stream entering `layer`, last token, from the two texts' default traces."""
    from core import steering_vector as difference

    return difference(traced(name, device, positive), traced(name, device, negative), layer)


@kept()
def steered(name: str, device: str, positive: str, negative: str, prompt: str, layer: int, scale: float):
    """The prompt traced with scale × the pair's steering vector added entering `layer` (last-position logits)."""
    vector = steering_vector(name, device, positive, negative, layer)
    loaded = model(name, device)
    return trace(loaded, prompt, record=(), max_tokens=token_limit(loaded.config),
                 steer={"layer": layer, "vector": vector, "scale": scale})


@kept(spinner="Writing the continuations…")
def steered_text(name: str, device: str, positive: str, negative: str, prompt: str, layer: int, scale: float,
                 n_tokens: int) -> str:
    """Greedy continuation of the prompt under the steering (scale 0: the model as it is)."""
    from core import generate

    vector = steering_vector(name, device, positive, negative, layer)
    return generate(model(name, device), prompt, max_new_tokens=n_tokens, temperature=0.0,
                    steer={"layer": layer, "vector": vector, "scale": scale}).shown()


@kept()
def surprise(name: str, device: str, text: str):
    """Every token's −log p and the top-5 the model expected there (core.interpret.surprisal): the text's trace grown with
    every position's logits for this view only (the final norm and unembedding on its kept stream; T × vocabulary
    floats, 151 MB for SmolLM2 at 768 tokens, are not kept with the trace — the result is a few KB)."""
    from core.interpret.surprisal import surprisal

    return surprisal(grow(model(name, device), traced(name, device, text), logits="all"))


@kept(spinner="Following the gradient back to every word…")
def word_saliency(name: str, device: str, text: str, target: int):
    """Gradient × input and integrated gradients of `target`'s logit after the text (core.interpret.saliency)."""
    from core.interpret.saliency import saliency

    loaded = model(name, device)
    return saliency(loaded, loaded.tokenizer.encode(text)[: token_limit(loaded.config)], target)


@kept()
def architecture(name: str, device: str, text: str, position: int, open_block: int | None):
    """The architecture picture's data (core.interpret.architecture) following one token, from the text's one trace grown by
    every block's adds and the open block's norms, heads and hidden units."""
    from core.interpret.architecture import architecture as gather
    from core.interpret.architecture import architecture_record

    loaded = model(name, device)
    every = grown(name, device, text, architecture_record(loaded.config))  # kept for every position and open block
    tr = grow(loaded, every, architecture_record(loaded.config, open_block))
    return gather(loaded, tr, position, open_block)


@kept()
def seq2seq_architecture(name: str, device: str, text: str):
    """The encoder–decoder's picture data for the translation of `text`: its encoder and decoder inputs recorded
    once more with every block's adds and streams (an encoder–decoder's trace cannot grow)."""
    from core.interpret.architecture import SEQ2SEQ_RECORD
    from core.interpret.architecture import seq2seq_architecture as gather
    from core.seq2seq import run

    loaded = model(name, device)
    done = translation(name, device, text).trace
    return gather(loaded, run(loaded, done.source_ids, done.target_ids, record=SEQ2SEQ_RECORD))


# --- information flow, two models side by side (core.interpret.flow, core.interpret.comparison) ---


@kept(spinner="Measuring every part's share of every stream…")
def information_flow(name: str, device: str, text: str):
    """Every part's share of every residual stream (core.interpret.flow.contribution_flow), from the text's one trace grown by
    each block's values and the streams around its feed-forward block (one block pass each, no new forward; the
    grown copy is not kept: the flow is made once per text)."""
    from core.interpret.flow import contribution_flow, flow_record

    loaded = model(name, device)
    return contribution_flow(loaded, grow(loaded, traced(name, device, text), flow_record(loaded.config.post_norm)))


def _tuned(value):
    """The model in what Train it yourself remembers for a fine-tuning (the copy alone, or the copy among the
    fingerprints and clock of its run). A model is what runs when called and carries a ModelConfig (a Trace carries
    one too, but is not called)."""
    from core.config import ModelConfig

    def is_model(v) -> bool:
        return callable(v) and isinstance(getattr(v, "config", None), ModelConfig)

    if value is None or is_model(value):
        return value
    return next((v for v in value if is_model(v)), None) if isinstance(value, tuple) else None


def fine_tuned_copy():
    """(its key, the model): the copy of the embedded model this session fine-tuned on Train it yourself, while the
    store keeps it; None otherwise. Found by the settings that page keeps in the session, under the key that page
    remembers it by: ("finetune", its lines, steps, learning rate, seed)."""
    state = st.session_state
    if "ft.texts" not in state:
        return None
    lines = tuple(line for line in str(state["ft.texts"]).splitlines() if line.strip())
    key = ("finetune", lines, state.get("ft.steps"), state.get("ft.lr"), state.get("ft.seed"))
    tuned = _tuned(recalled(key))
    return None if tuned is None else (key, tuned)


@kept()
def fine_tuned_run(key: tuple, text: str):
    """The fine-tuned copy (`fine_tuned_copy`'s key) on the text: its trace with every position's logits, and its
    surprisal (core.interpret.surprisal)."""
    from core.interpret.surprisal import surprisal

    tuned = _tuned(recalled(key))
    if tuned is None:
        raise ValueError("the fine-tuned copy is no longer kept on the server: fine-tune it again on Train it yourself")
    tr = trace(tuned, text, logits="all", max_tokens=token_limit(tuned.config))
    return tr, surprisal(tr)


@kept()
def weight_matrix(name: str, device: str, layer: int, which: str, token_id: int):
    """One weight matrix, pooled to a drawable size (core.interpret.matrices)."""
    from core.interpret.matrices import weight_matrix as matrix

    return matrix(model(name, device), layer, which, token_id)
