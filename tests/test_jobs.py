"""core.jobs: one gate for heavy work — at most one job per slot, arrival order with queue places, long work never
holding the last slot, nested work passing through, torch's threads shared among running jobs."""

import threading
import time

import torch

from core.jobs import Gate


def run_all(gate: Gate, jobs: list, **kw) -> list:
    out = [None] * len(jobs)
    threads = [threading.Thread(target=lambda i=i, j=j: out.__setitem__(i, gate.run(j, **kw))) for i, j in
               enumerate(jobs)]
    for t in threads:
        t.start()
        time.sleep(0.01)  # arrival order
    for t in threads:
        t.join()
    return out


def test_no_more_jobs_run_at_once_than_slots():
    gate, running, peak = Gate(slots=2, set_threads=False), [0], [0]
    lock = threading.Lock()

    def job():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1
        return 1

    assert run_all(gate, [job] * 6) == [1] * 6 and peak[0] == 2 == gate.peak_running


def test_waiting_work_is_told_its_place_in_the_queue():
    gate, places = Gate(slots=1, set_threads=False), {}
    release = threading.Event()
    first = threading.Thread(target=lambda: gate.run(lambda: release.wait(5)))
    first.start()
    time.sleep(0.05)
    waiters = [threading.Thread(target=lambda i=i: gate.run(
        lambda: None, on_wait=lambda place, waited, i=i: places.setdefault(i, place))) for i in range(3)]
    for t in waiters:
        t.start()
        time.sleep(0.05)
    time.sleep(0.6)
    release.set()
    first.join()
    for t in waiters:
        t.join()
    assert places == {0: 1, 1: 2, 2: 3}


def test_long_work_leaves_a_slot_for_short_work():
    gate = Gate(slots=2, set_threads=False)
    release, order = threading.Event(), []
    longs = [threading.Thread(target=lambda i=i: gate.run(lambda: order.append(f"long{i}") or release.wait(5),
                                                          long=True)) for i in range(2)]
    for t in longs:
        t.start()
        time.sleep(0.05)
    time.sleep(0.1)
    assert order == ["long0"]  # the second long job waits: one slot stays free
    gate.run(lambda: order.append("short"))  # and short work takes it at once
    assert order == ["long0", "short"]
    release.set()
    for t in longs:
        t.join()
    assert order == ["long0", "short", "long1"]


def test_work_inside_work_does_not_wait_for_a_second_slot():
    gate = Gate(slots=1, set_threads=False)
    assert gate.run(lambda: gate.run(lambda: 42)) == 42


def test_torch_threads_are_shared_among_running_jobs(monkeypatch):
    monkeypatch.setattr("core.jobs.cores", lambda: 4)
    gate, seen = Gate(slots=4), []
    before = torch.get_num_threads()
    release = threading.Event()
    try:
        t = threading.Thread(target=lambda: gate.run(lambda: release.wait(5)))
        t.start()
        time.sleep(0.05)
        gate.run(lambda: seen.append(torch.get_num_threads()))  # two running: 4 // 2
        release.set()
        t.join()
        assert seen == [2] and torch.get_num_threads() == 4  # alone again: every core
    finally:
        torch.set_num_threads(before)


def test_long_work_inside_short_work_gives_the_short_slot_back():
    gate = Gate(slots=2, set_threads=False)
    release, order = threading.Event(), []

    def page_with_training():
        gate.run(lambda: order.append("long part") or release.wait(5), long=True)
        order.append("drawn after")

    t = threading.Thread(target=lambda: gate.run(page_with_training))
    t.start()
    time.sleep(0.1)
    assert gate.running == 1  # the page's short slot went back; its long part holds the long slot
    gate.run(lambda: order.append("another page"))  # a short page is not held up
    other_long = threading.Thread(target=lambda: gate.run(lambda: order.append("second long"), long=True))
    other_long.start()
    time.sleep(0.1)
    assert "second long" not in order  # one long slot of two
    release.set()
    t.join()
    other_long.join()
    assert order == ["long part", "another page", "drawn after", "second long"] or \
        order == ["long part", "another page", "second long", "drawn after"]
    assert gate.running == 0
