"""One memory budget for the whole server process, and the store that keeps to it.

A class shares one server: every model, trace, whole-text residual stream, pattern, neuron table and training that
the server keeps between page runs is counted here, in bytes, in ONE place (`Store`), and the least recently used
entries are evicted, by size, to stay within `limit_bytes()`. Work that would not fit even after evicting everything
else is refused before it starts (`TooBig`, with a message that says why and what to do); work that would fit once
other learners' running work is done waits for room.

The budget counts what is KEPT, and what was kept and is still HELD: an entry evicted while a page still uses it (a
learner's trace, evicted for another learner's work) frees nothing until that page lets go, so its bytes are
counted (`held`, through a weak reference) until it is freed, and the store keeps that much less meanwhile. Held
bytes never make work wait: they only shrink what is kept. A computation also needs working memory while it runs;
core.jobs bounds how many run at once, so that part is bounded too (it is measured by tools.load_test, not counted
here).

The limit: GLASSBOX_MEMORY_BUDGET (bytes, or with a unit: "1.4G", "800M"), else half of the container's memory limit
(cgroup v2 memory.max or v1 memory.limit_in_bytes) where one is set, else half of the machine's RAM. Half leaves room
for the interpreter, torch and Streamlit (about 0.4 GB) and for the running computations' working memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import itertools
import os
import re
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch

SHARE = 0.5  # of the container's (or machine's) memory that kept results may take
_UNITS = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
_NO_LIMIT = 2**60  # cgroups write "max" or a number near 2^63 when no limit is set


class TooBig(ValueError):
    """The work asked for would not fit in the server's memory budget, even with every other kept result evicted."""


def parse_size(raw: str) -> int:
    """ "1.4G" → 1_400_000_000, "512Mi" → 536_870_912, "2e9" → 2_000_000_000; a clear ValueError otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT][iI]?)?[bB]?\s*", raw)
    if not match:
        raise ValueError(f"GLASSBOX_MEMORY_BUDGET: {raw!r} is not a size (examples: 1.4G, 800M, 2e9)")
    value = float(match[1]) * _UNITS[(match[2] or "").upper()]
    if not 0 < value < _NO_LIMIT:
        raise ValueError(f"GLASSBOX_MEMORY_BUDGET: {raw!r} must be a positive size")
    return int(value)


def container_limit() -> int | None:
    """The memory limit of this process's container (cgroup), or None where none is set."""
    for path in _CGROUP_FILES:
        try:
            with open(path) as f:
                raw = f.read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < _NO_LIMIT:
            return int(raw)
    return None


def machine_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): assume a small laptop
        return 8 * 2**30


def limit_bytes() -> int:
    """The process's memory budget for kept results, in bytes (see the module docstring)."""
    raw = os.environ.get("GLASSBOX_MEMORY_BUDGET", "")
    if raw.strip():
        return parse_size(raw)
    return int(SHARE * (container_limit() or machine_memory()))


def nbytes(obj: Any, _seen: set[int] | None = None, _depth: int = 0) -> int:
    """Bytes of tensor and array data an object holds (a model's parameters and buffers, a Trace's tensors, a dict
    of arrays…), each storage counted once; plain Python values count as their size in a rough sense (64 bytes)."""
    seen = set() if _seen is None else _seen
    if id(obj) in seen or _depth > 12:
        return 0
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        storage = obj.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()
    if isinstance(obj, np.ndarray):
        return obj.nbytes if obj.base is None else nbytes(obj.base, seen, _depth + 1)
    if isinstance(obj, torch.nn.Module):
        return sum(nbytes(t, seen, _depth + 1) for t in [*obj.parameters(), *obj.buffers()])
    if isinstance(obj, (bytes, bytearray, str)):
        return len(obj)
    if isinstance(obj, dict):
        return 64 + sum(nbytes(k, seen, _depth + 1) + nbytes(v, seen, _depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return 64 + sum(nbytes(v, seen, _depth + 1) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return 64 + sum(nbytes(getattr(obj, f.name), seen, _depth + 1) for f in dataclasses.fields(obj))
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return 64 + sum(nbytes(v, seen, _depth + 1) for v in vars(obj).values())
    return 64


def give_back_freed_memory() -> None:
    """glibc keeps freed heap memory for reuse: after a big computation (SmolLM2 at 8,192 tokens: ~600 MB of freed
    activations; a 768-token recorded forward: ~200 MB) that is resident memory nobody uses, counted against the
    container's limit. malloc_trim hands it back to the OS (a few ms); elsewhere than glibc this does nothing."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # a Linux without glibc (musl) has no malloc_trim
            ctypes.CDLL(None).malloc_trim(0)


M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)
MMAP_FROM = 1 << 20  # bytes: every allocation this big or bigger gets pages of its own, handed back when freed
ARENAS = 2


def tune_allocator() -> bool:
    """Make freed tensors leave the process at once (glibc; elsewhere nothing happens, False). glibc serves an
    allocation below its mmap threshold from a heap arena and keeps the memory when it is freed; the threshold
    starts at 128 KB and rises with every larger block freed, up to 32 MB — so a server's (T, d) activations
    (1.8 MB for SmolLM2 at 768 tokens) soon come from arenas, one per thread that allocated (up to 8 per core), and
    resident memory stays at the high-water mark of every learner's work. A fixed 1 MB threshold (mmap for anything
    bigger, returned on free) and two arenas: a class of ten on SmolLM2 peaked at 2.9 GB instead of 3.6 GB
    (tools.load_test --scenario class, README). Call once, early, before the threads that allocate start."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_FROM)) and bool(libc.mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


@dataclasses.dataclass
class _Entry:
    value: Any
    size: int
    pinned: bool = False  # a model: evicted only to make room for another model, never for results


class Store:
    """Results kept between page runs, shared by every session, within one byte limit.

    `get(key, make, estimate=…)` returns the kept value or makes it: one thread makes a given key at a time, and
    others asking for the same key meanwhile wait and share its result (identical work runs once). Before making,
    `estimate` bytes are reserved: least recently used entries are evicted to make room; if other learners'
    reservations hold the room, it waits for them (up to `wait_s`); if the estimate exceeds the whole limit it raises
    TooBig at once. After making, the entry is counted at its measured size (`nbytes`); a value larger than the whole
    limit is handed back but not kept.
    """

    def __init__(self, limit: int | Callable[[], int] = limit_bytes, wait_s: float = 120.0):
        self._limit = limit
        self.wait_s = wait_s
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._reserved: dict[Hashable, int] = {}
        self._making: dict[Hashable, threading.Event] = {}
        self._lock = threading.Condition()  # an RLock inside: a weak reference's callback may run while it is held
        self.evictions = 0
        self._held: dict[int, tuple[weakref.ref, int]] = {}  # evicted values still alive elsewhere: ref, bytes
        self._tickets = itertools.count()

    @property
    def limit(self) -> int:
        return self._limit() if callable(self._limit) else self._limit

    @property
    def kept(self) -> int:
        """Bytes of the entries kept now."""
        with self._lock:
            return sum(e.size for e in self._entries.values())

    @property
    def used(self) -> int:
        """Kept bytes plus the reservations of work in progress."""
        with self._lock:
            return self._used()

    @property
    def held(self) -> int:
        """Bytes of evicted values that something still holds (freed when the last holder lets go)."""
        with self._lock:
            return sum(size for _, size in self._held.values())

    def _used(self) -> int:
        return sum(e.size for e in self._entries.values()) + sum(self._reserved.values())

    def _occupied(self) -> int:
        """What the kept entries, the reservations and the evicted-but-held values take: what eviction keeps within
        the limit."""
        return self._used() + sum(size for _, size in self._held.values())

    def _hold(self, entry: _Entry) -> None:
        """Count an evicted entry's bytes until its value is freed, if anything else still refers to it."""
        ticket = next(self._tickets)

        def freed(_ref, ticket=ticket) -> None:
            with self._lock:
                self._held.pop(ticket, None)
                self._lock.notify_all()

        try:
            ref = weakref.ref(entry.value, freed)
        except TypeError:  # tuples, lists, dicts: not weakly referable, counted as freed
            return
        self._held[ticket] = (ref, entry.size)
        entry.value = None  # the store's own reference goes now: if nothing else holds the value, `freed` runs

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The kept value for `key` (marked as recently used), or `default`."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry.value

    def get(self, key: Hashable, make: Callable[[], Any], estimate: int = 0, what: str = "this",
            pin: bool = False) -> Any:
        """The kept value for `key`, or `make()`'s, kept. pin=True (models): results never push it out — evicting a
        model that pages still hold, then loading it again for the next page, would keep two copies alive."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    return entry.value
                busy = self._making.get(key)
                if busy is None:
                    self._reserve(key, estimate, what, pin)
                    self._making[key] = threading.Event()
                    break
            busy.wait()  # another session is making the same thing: share it (or make it if that failed)
        try:
            value = make()
        except BaseException:
            with self._lock:
                self._release(key)
            raise
        self.put(key, value, _made=True, pin=pin)
        return value

    def put(self, key: Hashable, value: Any, _made: bool = False, pin: bool = False) -> None:
        """Keep `value` under `key` (replacing what was there: a trace that grew), evicting by size to stay within
        the limit."""
        size = nbytes(value)
        with self._lock:
            if _made:
                self._release(key)
            self._entries.pop(key, None)
            if size <= self.limit:
                self._entries[key] = _Entry(value, size, pin)
                self._evict(self.limit, keep=key, models_too=pin)
            self._lock.notify_all()

    def drop(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._lock.notify_all()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._lock.notify_all()

    def _reserve(self, key: Hashable, estimate: int, what: str, pin: bool = False) -> None:
        limit = self.limit
        if estimate > limit:
            raise TooBig(f"{what} would need about {gb(estimate)}, more than this server's whole memory budget "
                         f"({gb(limit)}): try a shorter text or a smaller model")
        models = sum(e.size for e in self._entries.values() if e.pinned)
        if not pin and models + estimate > limit:
            raise TooBig(f"{what} would need about {gb(estimate)}; beside the loaded model{'s' * (models > 0)} "
                         f"({gb(models)}) this server's memory budget ({gb(limit)}) leaves {gb(limit - models)}: try "
                         "a shorter text")
        deadline = time.monotonic() + self.wait_s
        while True:
            self._evict(limit - estimate, models_too=pin)
            if self._used() + estimate <= limit:
                self._reserved[key] = estimate
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TooBig(f"{what} needs about {gb(estimate)} and other learners' work holds the server's memory "
                             f"budget ({gb(limit)}) now: try again in a minute, or a shorter text")
            self._lock.wait(min(left, 1.0))

    def _release(self, key: Hashable) -> None:
        self._reserved.pop(key, None)
        done = self._making.pop(key, None)
        if done is not None:
            done.set()
        self._lock.notify_all()

    def _evict(self, target: int, keep: Hashable | None = None, models_too: bool = False) -> None:
        """Evict least recently used entries (never `keep`; models only for a model) until the used bytes — with the
        evicted values still held — are at most `target`: first the entries nothing else refers to (evicting one a
        running page holds frees nothing, and that page would make it again if it asked twice), then the others."""
        for only_free in (True, False):
            for key in list(self._entries):
                if self._occupied() <= target:
                    return
                entry = self._entries[key]
                if key == keep or (entry.pinned and not models_too):
                    continue
                if only_free and sys.getrefcount(entry.value) > 2:  # the entry's own reference and the argument
                    continue
                self._hold(self._entries.pop(key))
                self.evictions += 1


store = Store()
"""The process's one store: every page's kept results (pages/common/cache.py)."""
