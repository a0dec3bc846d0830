"""Glassbox's engine: one instrumented transformer, offline tokenizers, weight loading, tracing and generation.

    from core import load_model, load_tokenizer, trace, generate
    model = load_model()                 # the embedded default model
    tr = trace(model, "Hello world")     # tr.tokens, tr.logits, tr.pattern(layer), tr["blocks.0.hook_resid_post"]

Pure torch/numpy/tiktoken: never imports streamlit or plotly, so it works from a notebook.
"""

from core.config import PRESETS, ModelConfig
from core.generate import Generation, generate, sampling_distribution
from core.model import DEFAULT_RECORD, Recorder, Transformer
from core.tokenizer import Tokenizer, load_tokenizer
from core.trace import Trace, trace
from core.weights import load_model

__all__ = [
    "DEFAULT_RECORD",
    "PRESETS",
    "Generation",
    "ModelConfig",
    "Recorder",
    "Tokenizer",
    "Trace",
    "Transformer",
    "generate",
    "load_model",
    "load_tokenizer",
    "sampling_distribution",
    "trace",
]
