"""Glassbox's engine: one instrumented transformer, offline tokenizers, weight loading, tracing and generation.

    from core import load_model, load_tokenizer, trace, generate
    model = load_model()                 # the embedded default model (core.loading.registry lists the others)
    tr = trace(model, "Hello world")     # tr.tokens, tr.logits, tr.resid_post(0): the residual stream is kept
    layer_pattern(model, tr, 0)          # one layer's attention weights, computed from the stream tr kept
    trace(model, "Hi", record="*")       # everything recorded in the forward pass (see core.model's table)
    translate(load_model("translator-en-fr"), "the cat sees a dog").text   # the encoder–decoder: core.seq2seq
    trace(model, "Hi", steer={"layer": 1, "vector": v, "scale": 2.0})      # interventions: core.interventions

Pure torch/numpy/tiktoken: never imports streamlit or plotly, so it works from a notebook.
"""

from core.config import PRESETS, ModelConfig
from core.generate import Generation, GenerationTree, generate, sample_token, sampling_distribution
from core.interventions import patch_sweep, steering_vector
from core.learning import fine_tune
from core.loading.registry import load_model
from core.model import DEFAULT_RECORD, Recorder, Transformer
from core.seq2seq import translate
from core.tokenizer import Tokenizer, load_tokenizer
from core.trace import Trace, layer_pattern, trace

__all__ = [
    "DEFAULT_RECORD",
    "PRESETS",
    "Generation",
    "GenerationTree",
    "ModelConfig",
    "Recorder",
    "Tokenizer",
    "Trace",
    "Transformer",
    "fine_tune",
    "generate",
    "layer_pattern",
    "load_model",
    "load_tokenizer",
    "patch_sweep",
    "sample_token",
    "sampling_distribution",
    "steering_vector",
    "trace",
    "translate",
]
