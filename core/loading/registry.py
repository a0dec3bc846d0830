"""The model registry: every model the app can offer, in one table — how it is fetched, how it is loaded, and what
it has.

Three sources meet here: models this project trained and ships in assets/models/ (found by their folders), models
that pip packages ship (core.loading.packaged), and the GPT-2 family from the Hugging Face Hub. Adding a model is one line
in `ENTRIES` (or, for a shipped one, one folder in assets/models/). Callers ask an entry what the model has — a
training history, an encoder — and never compare a model's name with a constant.

    from core.loading.registry import load_model, get
    model = load_model("smollm2-135m")
    get("tiny-stories-1m").history.steps   # the training snapshots the app can show
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import torch

from core.loading import hub, packaged
from core.loading.weights import Progress, load_dir
from core.model import Transformer
from core.tokenizer import ASSETS, load_tokenizer
from core.training import TrainingLog

MODELS_DIR = ASSETS / "models"
MAX_NAME_CHARS = 1000  # a name, a folder or a Hub repo id (at most 193 characters on the Hub)
DEFAULT_MODEL = "tiny-stories-1m"

Loader = Callable[[str | torch.device, Progress | None], Transformer]


class History:
    """A shipped model's training: its log and the fp16 snapshots in checkpoints/ (the last step is the model
    itself). A language model's log is a typed TrainingLog (core.training); the translator's is its own
    (tools.train_translator); both name their step count under "recipe"."""

    LOGS = ("training_log.json", "translator_log.json")

    def __init__(self, folder: Path):
        self.folder = folder
        self.file = next((folder / f for f in self.LOGS if (folder / f).exists()), folder / self.LOGS[0])

    @cached_property
    def raw(self) -> dict:
        return json.loads(self.file.read_text())

    @cached_property
    def log(self) -> TrainingLog:
        return TrainingLog.from_dict(self.raw)

    @cached_property
    def steps(self) -> list[int]:
        steps = sorted(int(p.stem.removeprefix("step_")) for p in (self.folder / "checkpoints").glob("step_*.safetensors"))
        return steps + [int(self.raw["recipe"]["steps"])] if steps else []

    def load(self, step: int, device: str | torch.device = "auto") -> Transformer:
        """The model as it was at training step `step` (fp16 snapshot computed in fp32)."""
        if step not in self.steps:
            raise ValueError(f"{self.folder.name} has no snapshot at step {step}; it has {self.steps}")
        if step == self.steps[-1]:
            return load_dir(self.folder, device)
        return load_dir(self.folder, device, weights=self.folder / "checkpoints" / f"step_{step:06d}.safetensors")


@dataclass(frozen=True)
class ModelEntry:
    name: str  # what the app's URL and `load_model` call it
    about: str  # what it is, in a few words
    source: str  # "shipped" (assets/), "packaged" (a pip package, offline) or "hub" (downloaded once)
    loader: Loader
    prepare: Callable[[Progress | None], object] | None = None  # the slow one-time part: download, conversion
    encoder: bool = False  # bidirectional, no next-token head
    module: str | None = None  # the pip package that must be installed
    seq2seq: bool = False  # an encoder–decoder (core.seq2seq): it translates, it does not continue a text
    hub_repo: str | None = None  # a packaged model's own Hub repo: used where the package is not installed

    @property
    def from_hub(self) -> bool:
        """A packaged model taken from its Hub repo, because its package is not installed (Community Cloud installs
        requirements.txt only, and these packages need --no-deps)."""
        return self.hub_repo is not None and self.module is not None and not _installed(self.module)

    @property
    def kind(self) -> str:
        """"decoder" (GPT, Llama), "encoder" (BERT) or "encoder-decoder" (the original Transformer)."""
        return "encoder-decoder" if self.seq2seq else "encoder" if self.encoder else "decoder"

    @property
    def label(self) -> str:
        where = {"shipped": "offline", "packaged": "offline, pip package", "hub": "Hugging Face Hub, downloads once"}
        return f"{self.name} ({self.about}; {where['hub' if self.from_hub else self.source]})"

    @property
    def available(self) -> bool:
        if self.from_hub:
            return _hub_usable(self.hub_repo)
        return self.module is None or _installed(self.module)

    @property
    def history(self) -> History | None:
        return _history(MODELS_DIR / self.name) if self.source == "shipped" else None

    def fetch(self, progress: Progress | None = None) -> str | None:
        """Do the slow one-time part (the Hub download, SmolLM2's conversion) so that `load` only reads local files:
        the app calls this outside its model cache, where it may draw a progress bar. Returns a notice for the
        learner when something needed fixing (a damaged cache rebuilt, a cache that could not be saved)."""
        if self.from_hub:
            hub.download(self.hub_repo, progress)
            return None
        if self.prepare is not None:
            return getattr(self.prepare(progress), "notice", None)
        return None

    def load(self, device: str | torch.device = "auto", progress: Progress | None = None) -> Transformer:
        """In eval mode with gradients off, on `device` ("auto": CUDA when present)."""
        if self.from_hub:
            return hub.load(self.hub_repo, device, progress, name=self.name)
        return self.loader(device, progress)


@lru_cache(maxsize=8)
def _history(folder: Path) -> History | None:
    """One History per shipped folder and process: its log is parsed and checked once, not on every page run."""
    history = History(folder) if any((folder / f).exists() for f in History.LOGS) else None
    return history if history is not None and history.steps else None


def _shipped(folder: Path) -> ModelEntry:
    try:  # only its shape, to list it under the right kind; loading checks the file properly
        seq2seq = json.loads((folder / "config.json").read_text())["model"].get("n_decoder_layers", 0) > 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        seq2seq = False
    about = "embedded" if folder.name == DEFAULT_MODEL else \
        "English→French encoder–decoder, shipped" if seq2seq else "shipped with the app"
    return ModelEntry(folder.name, about, "shipped", lambda device, progress: load_dir(folder, device),
                      seq2seq=seq2seq)


def _hub(name: str, repo: str, about: str, tokenizer: str) -> ModelEntry:
    """A Hub repo in a format core.loading.weights reads; `tokenizer` names the shipped tokenizer its weights use."""

    def load(device, progress):
        return hub.load(repo, device, progress, tokenizer=load_tokenizer(tokenizer), name=name)

    return ModelEntry(name, about, "hub", load, prepare=lambda progress: hub.download(repo, progress))


@lru_cache(maxsize=64)
def hub_entry(repo_id: str) -> ModelEntry:
    """Any Hub repo by its id ("HuggingFaceTB/SmolLM2-360M"): loaded with its own tokenizer if its architecture is
    one the core builds (core.loading.hub)."""
    if not hub.is_repo_id(repo_id):
        raise ValueError(f"{repo_id!r} is not a Hub repo id (expected 'organisation/name')")
    return ModelEntry(repo_id, "from the Hugging Face Hub", "hub",
                      lambda device, progress: hub.load(repo_id, device, progress),
                      prepare=lambda progress: hub.download(repo_id, progress))


def _shipped_folders() -> list[Path]:
    folders = sorted(p for p in MODELS_DIR.iterdir() if (p / "config.json").exists()) if MODELS_DIR.exists() else []
    return sorted(folders, key=lambda p: p.name != DEFAULT_MODEL)  # the default first


# The table: shipped models first (the default at the top), then the Hub, then the pip-packaged ones.
ENTRIES: dict[str, ModelEntry] = {e.name: e for e in [
    *(_shipped(folder) for folder in _shipped_folders()),
    _hub("gpt2", "openai-community/gpt2", "GPT-2 small, 124M", "gpt2"),
    _hub("distilgpt2", "distilbert/distilgpt2", "DistilGPT-2, 82M", "gpt2"),
    _hub("gpt2-medium", "openai-community/gpt2-medium", "GPT-2 medium, 355M", "gpt2"),
    ModelEntry("smollm2-135m", "SmolLM2-135M-Instruct, a Llama-style decoder", "packaged",
               lambda device, progress: packaged.load_smollm2(device, progress), prepare=packaged.prepare_smollm2,
               module=packaged.SMOLLM2[0], hub_repo="HuggingFaceTB/SmolLM2-135M-Instruct"),
    ModelEntry("minilm-l6", "all-MiniLM-L6-v2, a BERT-style encoder", "packaged",
               lambda device, progress: packaged.load_minilm(device), encoder=True, module=packaged.MINILM[0],
               hub_repo="sentence-transformers/all-MiniLM-L6-v2"),
]}


@functools.cache
def _installed(module: str) -> bool:
    """Looked up once per process: find_spec walks sys.path, and the app asks on every script run of every
    session (a few percent of the server's CPU with a classroom on it). Installing a package needs a restart."""
    return importlib.util.find_spec(module) is not None


@functools.cache
def _hub_usable(repo_id: str) -> bool:
    """The repo is complete in the local Hugging Face cache, or the Hub can be reached (a quick TCP connection,
    skipped with HF_HUB_OFFLINE): asked once per process, at the first page, only where a package is missing."""
    return hub.cached(repo_id) or (not hub.offline() and hub.reachable())


def entries(available_only: bool = True) -> list[ModelEntry]:
    return [e for e in ENTRIES.values() if e.available or not available_only]


def names() -> list[str]:
    """The models that can be picked here (packaged ones only when their package is installed)."""
    return [e.name for e in entries()]


def get(name: str) -> ModelEntry:
    """A registry entry by name, or an entry for any Hub repo id."""
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"a model name of {len(name):,} characters is no model (at most {MAX_NAME_CHARS})")
    if name in ENTRIES:
        return ENTRIES[name]
    if hub.is_repo_id(name):
        return hub_entry(name)
    raise ValueError(f"unknown model {name[:100]!r}; known: {list(ENTRIES)}, or a Hub repo id such as "
                     "'HuggingFaceTB/SmolLM2-360M'")


def find(encoder: bool | None = None, kind: str | None = None) -> ModelEntry | None:
    """The first available model of a kind: an encoder (encoder=True) to set beside a decoder, a decoder
    (encoder=False), or kind="encoder-decoder"."""
    wanted = kind or ("encoder" if encoder else "decoder")
    return next((e for e in entries() if e.kind == wanted), None)


def _is_folder(name: str | os.PathLike) -> bool:
    try:
        return Path(name).is_dir()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def load_model(
    name: str | os.PathLike | None = None, device: str | torch.device = "auto", progress: Progress | None = None
) -> Transformer:
    """None → the embedded default model; a registry name → its entry; a folder path → load it; a Hub repo id
    ("org/name") → download once (core.loading.hub) and load it with its own tokenizer."""
    if name is not None and len(str(name)) > MAX_NAME_CHARS:
        raise ValueError(f"a model name of {len(str(name)):,} characters is no model: names, folders and Hub repo ids "
                         f"are at most {MAX_NAME_CHARS} characters")
    if name is None:
        if DEFAULT_MODEL not in ENTRIES:
            raise FileNotFoundError(f"the embedded default model is missing: expected {MODELS_DIR / DEFAULT_MODEL} "
                                    "(see README: tools.train)")
        name = DEFAULT_MODEL
    if isinstance(name, str) and name in ENTRIES:
        return ENTRIES[name].load(device, progress)
    if _is_folder(name):
        return load_dir(name, device)
    if isinstance(name, str) and hub.is_repo_id(name):
        return hub_entry(name).load(device, progress)
    raise ValueError(f"unknown model {str(name)[:100]!r}: give a folder with config.json, one of {list(ENTRIES)}, or a "
                     "Hub repo id")
