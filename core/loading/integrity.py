"""Files Glassbox reads are checked before they are trusted: shipped assets against the SHA-256 sums recorded in
assets/SHA256SUMS, caches Glassbox writes against the manifest written with them. A mismatch raises DamagedFile,
whose message names the file and what to do, instead of a model that silently computes NaN.

`python -m tools.hashes` rewrites assets/SHA256SUMS after an asset changes on purpose (tools.train does it too); a
test fails while the recorded sums and the files disagree.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
SUMS = ASSETS / "SHA256SUMS"
MANIFEST = "manifest.json"
_checked: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) → sha256, so each file is hashed once
_lock = threading.Lock()


class DamagedFile(ValueError):
    """A file is missing, truncated or not the one that was recorded. The message names it."""


class NonFinite(ValueError):
    """A model computed NaN or infinite numbers (damaged weights): said where it shows, never left to crash later."""


def check_logits(logits, source: str | None) -> None:
    """Raise NonFinite, naming where the weights came from, unless every logit is a finite number."""
    import torch

    if logits is not None and not bool(torch.isfinite(logits).all()):
        where = f" (weights read from {source})" if source else ""
        raise NonFinite(f"The model computed NaN or infinite scores for this text{where}: its weights are damaged. "
                        "Reload the model; if it persists, reinstall it or delete its cache.")


def sha256(path: Path) -> str:
    """The file's SHA-256, computed once per (path, size, modification time) and process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _checked:
            return _checked[key]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    with _lock:
        _checked[key] = digest.hexdigest()
    return _checked[key]


@lru_cache(maxsize=1)
def recorded() -> dict[str, str]:
    """assets/SHA256SUMS as {path relative to assets/: sha256} (empty when the file is absent)."""
    if not SUMS.exists():
        return {}
    pairs = (line.split(maxsplit=1) for line in SUMS.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}


def check_asset(path: str | os.PathLike) -> None:
    """Raise DamagedFile when a shipped file differs from its recorded sum. Files outside assets/ (a user's own
    model folder) and files the sums do not list pass unchecked."""
    path = Path(path).resolve()
    try:
        name = path.relative_to(ASSETS.resolve()).as_posix()
    except ValueError:
        return
    expected = recorded().get(name)
    if expected is None:
        return
    if not path.exists():
        raise DamagedFile(f"assets/{name} is missing: restore it (git checkout -- assets/{name}) or reinstall")
    if sha256(path) != expected:
        raise DamagedFile(f"assets/{name} is damaged (its SHA-256 differs from the one recorded in "
                          f"assets/SHA256SUMS): restore it (git checkout -- assets/{name}) or reinstall Glassbox")


def asset_files() -> list[Path]:
    """Every file the sums cover: all of assets/ but the sums themselves."""
    return sorted(p for p in ASSETS.rglob("*") if p.is_file() and p != SUMS and "__pycache__" not in p.parts)


def write_sums() -> int:
    lines = [f"{sha256(p)}  {p.relative_to(ASSETS).as_posix()}" for p in asset_files()]
    SUMS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    recorded.cache_clear()
    return len(lines)


def write_manifest(folder: Path) -> None:
    """Record the size and SHA-256 of every file in a cache folder Glassbox wrote (in manifest.json)."""
    files = {p.name: {"size": p.stat().st_size, "sha256": sha256(p)} for p in sorted(folder.iterdir())
             if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def check_manifest(folder: Path) -> None:
    """Raise DamagedFile unless every file listed in the folder's manifest is there with its size and hash."""
    try:
        listed = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DamagedFile(f"{folder / MANIFEST} is missing or unreadable ({err.__class__.__name__})") from None
    for name, want in listed.items():
        file = folder / name
        if not file.exists():
            raise DamagedFile(f"{file} is missing")
        if file.stat().st_size != want["size"]:
            raise DamagedFile(f"{file} is truncated or overwritten: {file.stat().st_size:,} bytes, not "
                              f"{want['size']:,}")
        if sha256(file) != want["sha256"]:
            raise DamagedFile(f"{file} is damaged: its SHA-256 differs from the one recorded when it was written")
