"""Models from the Hugging Face Hub, by repo id, through huggingface_hub.

Files go to the standard Hugging Face cache (HF_HUB_CACHE / HF_HOME), so a model a user already has from
transformers is read from there, not downloaded again; HF_HUB_OFFLINE and HF_ENDPOINT are respected, and an
interrupted download resumes (all huggingface_hub's own behaviour). Only safetensors weights are fetched (no
pickled code ever runs), plus the config and the tokenizer.

Any GPT-2-, Llama- or BERT-family repo loads into the core with its own tokenizer (tokenizer.json, read with
`tokenizers`); another architecture gets "not supported yet: <architecture>" before its weights are downloaded.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from tqdm.auto import tqdm

from core.loading.chat_template import Template
from core.loading.weights import Progress, check_fits, config_from_hf, load_dir, shard_names
from core.model import Transformer
from core.tokenizer import TokenizerFailed, is_panic

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
WEIGHTS = "model.safetensors"
SHARDS = "model.safetensors.index.json"
OPTIONAL = ("tokenizer.json", "tokenizer_config.json")
MAX_JSON_BYTES = 1_000_000  # config.json: a few kB in every real repo
MAX_TOKENIZER_CONFIG_BYTES = 10_000_000  # tokenizer_config.json: chat templates and added tokens, ~10–500 kB
MAX_TOKENIZER_BYTES = 100_000_000  # tokenizer.json: 2–35 MB for published vocabularies
PROBE = "Hello, world! It's 2024: naïve café — 日本語 😀 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"


class HubError(ConnectionError):
    """The Hub could not give us the files (offline, no such repo, a gated repo): the message says which."""


def is_repo_id(name: str) -> bool:
    """'org/name' as the Hub spells repo ids (no paths, no URLs; no '--' or '..', which huggingface_hub refuses)."""
    return bool(REPO_ID.match(name)) and ".." not in name and "--" not in name


def _progress_bar(progress: Progress | None, done: int, total: int, filename: str) -> type[tqdm] | None:
    """A tqdm class that reports one file's bytes to `progress` as a share of the whole download."""
    if progress is None:
        return None

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # nothing on the console; the app draws its own bar
            super().__init__(*args, **kwargs)
            self.received = 0  # a disabled tqdm does not count, so count here

        def update(self, n=1):
            self.received += n or 0
            if self.total:
                share = (done + min(self.received / self.total, 1.0)) / total
                progress(share, f"downloading {filename}: {self.received / 1e6:.1f} of {self.total / 1e6:.1f} MB")

    return Bar


def offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _fetch(repo_id: str, filename: str, local_only: bool, bar: type[tqdm] | None = None,
           optional: bool = False) -> Path | None:
    """One file of the repo from the cache (or the Hub); None when the repo has no such file (or, looking only in
    the cache, when an optional file is not there). HF_ENDPOINT and HF_HUB_CACHE are read at each call."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename, local_files_only=local_only or offline(), tqdm_class=bar,
                                    endpoint=os.environ.get("HF_ENDPOINT") or None,
                                    cache_dir=os.environ.get("HF_HUB_CACHE") or None))
    except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError: first) not in the cache, or offline
        if local_only and optional:
            return None
        raise
    except EntryNotFoundError:  # the repo has no such file
        return None


def _explain(repo_id: str, err: Exception) -> HubError:
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    if isinstance(err, GatedRepoError):
        why = "the repo is gated: accept its licence on huggingface.co and log in (hf auth login)"
    elif isinstance(err, RepositoryNotFoundError):
        why = "no such repo on the Hub (or it is private)"
    elif isinstance(err, LocalEntryNotFoundError):
        why = "it is not in the local Hugging Face cache and the Hub cannot be reached (offline, or HF_HUB_OFFLINE)"
    else:
        why = f"{err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return HubError(f"could not get {repo_id} from the Hugging Face Hub: {why}")


def download(repo_id: str, progress: Progress | None = None) -> Path:
    """The repo's snapshot folder with config.json, the safetensors weights (one file or shards) and, when the repo
    has them, tokenizer.json and tokenizer_config.json. Read from the local cache when everything is there (no
    network); otherwise downloaded, the config first, so an unsupported architecture costs no weights."""
    if not is_repo_id(repo_id):
        raise ValueError(f"{repo_id!r} is not a Hub repo id (expected 'organisation/name')")
    try:
        return _download(repo_id, progress, local_only=True)
    except OSError:  # something is missing locally (LocalEntryNotFoundError, HubError): go to the Hub
        pass
    if offline():
        raise HubError(f"could not get {repo_id}: it is not (completely) in the local Hugging Face cache and "
                       "HF_HUB_OFFLINE is set")
    unreachable = _unreachable()
    if unreachable:
        raise HubError(f"could not get {repo_id} from the Hugging Face Hub: {unreachable}. Are you offline?")
    try:
        return _download(repo_id, progress, local_only=False)
    except (HubError, ValueError):
        raise
    except Exception as err:  # noqa: BLE001 — huggingface_hub's and the network's many error types
        raise _explain(repo_id, err) from None


def cached(repo_id: str) -> bool:
    """Every file `download` needs is in the local Hugging Face cache (no network)."""
    try:
        _download(repo_id, None, local_only=True)
        return True
    except (OSError, ValueError):
        return False


def reachable(timeout: float = 3.0) -> bool:
    """The Hub's address answers a TCP connection (or a proxy is set, which the check cannot see through)."""
    return _unreachable(timeout) is None


def _unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hub's address cannot be reached (a quick TCP connection), or None. huggingface_hub would retry for
    about 20 s first; a learner without a network should hear it at once. Skipped behind a proxy."""
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None
    url = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
        return None
    except OSError as err:
        return f"{url.hostname}:{port} cannot be reached ({err.strerror or err.__class__.__name__})"


def read_json(file: Path, repo_id: str, limit: int = MAX_JSON_BYTES) -> object:
    """A small JSON file of the repo, refused by name (never by server path) when it is too large or not JSON."""
    size = file.stat().st_size
    if size > limit:
        raise ValueError(f"{repo_id}: {file.name} is {size:,} bytes, over the {limit:,} accepted for it")
    try:
        return json.loads(file.read_bytes())
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{repo_id}: {file.name} is not valid JSON ({str(err)[:120]})") from None


def _download(repo_id: str, progress: Progress | None, local_only: bool) -> Path:
    config = _fetch(repo_id, "config.json", local_only)
    if config is None:
        raise HubError(f"{repo_id} has no config.json: it is not a transformers model")
    supported(read_json(config, repo_id), repo_id)
    index = _fetch(repo_id, SHARDS, local_only, optional=True)
    try:
        weights = shard_names(index) if index is not None else [WEIGHTS]
    except ValueError as err:
        raise ValueError(f"{repo_id}: {err}") from None
    files = [*weights, *OPTIONAL]
    for n, filename in enumerate(files):
        bar = _progress_bar(progress, n, len(files), filename)
        got = _fetch(repo_id, filename, local_only, bar, optional=filename in OPTIONAL)
        if got is None and filename not in OPTIONAL:
            raise HubError(f"{repo_id} has no safetensors weights ({filename}); Glassbox reads only safetensors")
        if progress is not None:
            progress((n + 1) / len(files), f"{repo_id}: {filename} {'ready' if got else 'not in the repo'}")
    return config.parent


def supported(hf_config: dict, repo_id: str = "this model") -> None:
    """Raise ValueError("not supported yet: <architecture>") unless the core can build this config, and TooBig when
    the model would not fit in the server's memory budget: both before any weight is downloaded or allocated."""
    if not isinstance(hf_config, dict):
        raise ValueError(f"{repo_id}: config.json holds {type(hf_config).__name__}, not a model configuration")
    architectures = hf_config.get("architectures")
    architecture = architectures[0] if isinstance(architectures, list) and architectures else \
        hf_config.get("model_type", "unknown")
    architecture = str(architecture)[:80]
    try:
        cfg = config_from_hf(hf_config)
    except ValueError as err:
        if hf_config.get("model_type") in ("gpt2", "llama", "bert"):  # a family the core builds: say what is wrong
            raise ValueError(f"{repo_id}: its config.json cannot be used: {err}") from None
        raise ValueError(f"{repo_id}: not supported yet: {architecture} (Glassbox reads GPT-2-, Llama- and "
                         "BERT-family models)") from None
    check_fits(cfg, repo_id)


def tokenizer_of(folder: Path, name: str):
    """The repo's own tokenizer from tokenizer.json (and its chat template from tokenizer_config.json), or None.
    TokenizerFailed, naming the repo and the file, when tokenizer.json cannot be read or `tokenizers` panics on it."""
    file = folder / "tokenizer.json"
    if not file.exists():
        return None
    if file.stat().st_size > MAX_TOKENIZER_BYTES:
        raise TokenizerFailed(f"{name}: tokenizer.json is {file.stat().st_size:,} bytes, over the "
                              f"{MAX_TOKENIZER_BYTES:,} accepted (the largest published ones are ~35 MB)")
    try:
        tokenizer = _read_tokenizer(file, name)
        tokenizer.encode(PROBE)  # a tokenizer that fails on plain text fails here, by name, not on a page
    except ValueError:  # our own messages (TokenizerFailed, "not supported yet")
        raise
    except BaseException as err:
        if not is_panic(err) and not isinstance(err, Exception):
            raise  # KeyboardInterrupt, SystemExit
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise TokenizerFailed(f"{name}: its tokenizer.json cannot be used ({first})") from None
    template = None
    config = folder / "tokenizer_config.json"
    if config.exists():
        meta = read_json(config, name, MAX_TOKENIZER_CONFIG_BYTES)
        template = meta.get("chat_template") if isinstance(meta, dict) else None
        # A template that is not a string (a list of named ones) or says nothing is no chat template here.
        template = Template(template, owner=name) if isinstance(template, str) and template.strip() else None
    tokenizer.chat_template = template
    return tokenizer


def _read_tokenizer(file: Path, name: str):
    from tokenizers import Tokenizer

    from core.tokenizer import HFTokenizer

    backend = Tokenizer.from_file(str(file))
    spec = json.loads(backend.to_str())
    model_type = spec["model"]["type"]
    kind = {"WordPiece": "wordpiece"}.get(model_type, "bpe")
    if model_type == "BPE" and "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")) + json.dumps(
            spec.get("decoder")):
        kind = "metaspace"  # SentencePiece-style BPE (Llama 2, TinyLlama): ▁ for spaces, <0xNN> byte tokens
    elif model_type not in ("BPE", "WordPiece"):
        raise ValueError(f"{name}: not supported yet: a {model_type} tokenizer (Glassbox reads BPE and WordPiece)")
    return HFTokenizer(name, backend, kind)


def load(repo_id: str, device: str | torch.device = "auto", progress: Progress | None = None,
         tokenizer=None, name: str | None = None) -> Transformer:
    """A Hub model in the core: downloaded once (or found in the cache), with its own tokenizer unless one is given
    (the GPT-2 family uses the shipped tiktoken file, which is the same vocabulary). `name`: what the app calls it
    (the repo id by default). Errors name the repo and its files, never the cache folder on the server."""
    import dataclasses

    folder = download(repo_id, progress)
    try:
        tokenizer = tokenizer or tokenizer_of(folder, name or repo_id)
        model = load_dir(folder, device, tokenizer=tokenizer)
    except Exception as err:  # noqa: BLE001 — every error of loading, re-raised with the same type
        raise _without_paths(err, folder, repo_id) from None
    if tokenizer is not None and tokenizer.n_vocab > model.config.vocab_size:
        raise TokenizerFailed(f"{name or repo_id}: tokenizer.json has {tokenizer.n_vocab:,} tokens but the model "
                              f"has {model.config.vocab_size:,} rows of embeddings: they do not belong together")
    model.config = dataclasses.replace(model.config, name=name or repo_id)
    return model


def _without_paths(err: Exception, folder: Path, repo_id: str) -> Exception:
    """`err` with the snapshot folder in its message replaced by the repo id: a learner sees "org/name/config.json",
    not where the server keeps its cache."""
    text = str(err.args[0]) if len(err.args) == 1 else str(err)
    for where in {str(folder), str(folder.resolve())}:
        text = text.replace(where + os.sep, f"{repo_id}/").replace(where, repo_id)
    err.args = (text,)
    return err
