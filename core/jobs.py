"""One gate for heavy work, shared by every learner of the server process.

A forward pass, a training or a sweep runs inside `gate.run(...)`: at most `slots` run at once (one per core), the
others wait in arrival order and can be told their place in the queue. Long work (training, whole-text views) may take
at most `slots - 1` of the slots, so short work (a new text on a page) always finds one soon, and light work (a page
drawn from kept results) never enters the gate at all.

torch's CPU thread count is one setting for the whole process (torch.set_num_threads, measured: a thread's call
changes every thread's count), so the gate sets it as jobs start and end: cores // running jobs. One learner alone
uses every core; N learners' jobs use one core each instead of N × cores threads fighting over the same cores (on two
cores, live pretraining beside other work measured 2.0 steps/s with torch's default threads and 15.2 with one).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from core.budget import give_back_freed_memory


def cores() -> int:
    """CPU cores this process may use (its affinity where the platform says, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


DETACHED = -1  # a thread inside work that gave its slot up (see Gate.run)


class Gate:
    def __init__(self, slots: int | None = None, set_threads: bool = True):
        self.slots = max(1, slots or cores())
        self.set_threads = set_threads
        self._cond = threading.Condition()
        self._queue: list[int] = []  # tickets waiting, in arrival order
        self._running: dict[int, bool] = {}  # ticket → long?
        self._long_waiting: dict[int, bool] = {}  # ticket → long?, for the tickets in the queue
        self._tickets = itertools.count()
        self.peak_running = 0
        self._inside = threading.local()  # .ticket: the slot this thread's work holds

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._running)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    def _may_start(self, ticket: int, long: bool) -> bool:
        if len(self._running) >= self.slots:
            return False
        if long and sum(self._running.values()) >= max(1, self.slots - 1):
            return False
        ahead = self._queue[: self._queue.index(ticket)]
        # arrival order, except that short work may pass long work waiting for a long slot
        return not ahead if long else not any(not self._long_waiting[t] for t in ahead)

    def run(self, work: Callable[[], Any], long: bool = False,
            on_wait: Callable[[int, float], None] | None = None) -> Any:
        """Run `work()` when a slot is free. While waiting, `on_wait(place, waited_s)` is called about twice a second
        (place 1 = next); it runs on the caller's thread, so a page can update its notice.

        Work started inside work runs at once in its slot, except long work inside short work (a page whose view
        turns out to be a training or the whole text): the short slot goes back to short work, and the long part
        waits for a long slot; what follows it runs without a slot (it is one learner's drawing)."""
        held = getattr(self._inside, "ticket", None)  # None: outside; DETACHED: inside, holding no slot
        if held is not None and (not long or held == DETACHED or self._running.get(held)):
            return work()
        if held is not None:
            self._leave(held)
            self._inside.ticket = DETACHED
        ticket = self._enter(long, on_wait)
        self._inside.ticket = ticket
        try:
            return work()
        finally:
            self._inside.ticket = None if held is None else DETACHED
            self._leave(ticket)
            give_back_freed_memory()  # what the work freed goes back to the OS: resident memory is what a host limits

    def _enter(self, long: bool, on_wait: Callable[[int, float], None] | None) -> int:
        ticket = next(self._tickets)
        started = time.monotonic()
        with self._cond:
            self._queue.append(ticket)
            self._long_waiting[ticket] = long
            try:
                while not self._may_start(ticket, long):
                    if on_wait is not None:
                        place = self._queue.index(ticket) + 1
                        self._cond.release()
                        try:
                            on_wait(place, time.monotonic() - started)
                        finally:
                            self._cond.acquire()
                    self._cond.wait(0.5)
            finally:
                self._queue.remove(ticket)
                self._long_waiting.pop(ticket, None)
            self._running[ticket] = long
            self.peak_running = max(self.peak_running, len(self._running))
            self._share_cores()
        return ticket

    def _leave(self, ticket: int) -> None:
        with self._cond:
            if self._running.pop(ticket, None) is not None:
                self._share_cores()
                self._cond.notify_all()

    def _share_cores(self) -> None:
        if self.set_threads:
            torch.set_num_threads(max(1, cores() // max(1, len(self._running))))


gate = Gate(int(os.environ["GLASSBOX_WORKERS"]) if os.environ.get("GLASSBOX_WORKERS", "").strip().isdigit() else None)
"""The process's one gate: one slot per core (GLASSBOX_WORKERS overrides)."""
