"""core.budget: the process's one memory budget — sizes measured, least recently used evicted by size, work that
cannot fit refused before it starts, identical work made once."""

import threading
import time

import pytest
import torch

from core import budget
from core.budget import Store, TooBig, nbytes, parse_size
from tests.conftest import tiny


def blob(n_bytes: int) -> torch.Tensor:
    return torch.zeros(n_bytes // 4)  # float32


def test_sizes_parse_with_units_and_bad_ones_are_named():
    assert parse_size("1.4G") == 1_400_000_000 and parse_size("512Mi") == 512 * 2**20 and parse_size("2e9") == 2e9
    for bad in ("lots", "-1G", "0", ""):
        with pytest.raises(ValueError, match="GLASSBOX_MEMORY_BUDGET"):
            parse_size(bad)


def test_the_limit_comes_from_the_setting_else_half_the_memory(monkeypatch):
    monkeypatch.setenv("GLASSBOX_MEMORY_BUDGET", "800M")
    assert budget.limit_bytes() == 800_000_000
    monkeypatch.delenv("GLASSBOX_MEMORY_BUDGET")
    monkeypatch.setattr(budget, "container_limit", lambda: 2_700_000_000)
    assert budget.limit_bytes() == 1_350_000_000
    monkeypatch.setattr(budget, "container_limit", lambda: None)
    assert budget.limit_bytes() == budget.machine_memory() // 2


def test_nbytes_counts_tensors_once_models_and_traces():
    t = blob(4000)
    assert nbytes(t) == 4000 and nbytes([t, t, t[:10]]) < 4000 + 200  # one storage, counted once
    model = tiny("tiny-stories-1m")
    assert nbytes(model) == sum(p.numel() * 4 for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers())
    from core import trace

    tr = trace(model, list(range(20)))
    assert tr.nbytes <= nbytes(tr) < tr.nbytes + 20_000


def test_least_recently_used_is_evicted_by_size():
    store = Store(limit=10_000)
    for key in "abc":
        store.get(key, lambda: blob(3000))
    store.get("a", lambda: pytest.fail("a is kept"))  # a is now the most recent
    store.get("d", lambda: blob(3000))  # 12,000 > 10,000: b (least recent) goes
    assert "b" not in store and all(k in store for k in "acd") and store.kept <= 10_000


def test_work_that_cannot_fit_is_refused_before_it_starts():
    store = Store(limit=10_000)
    with pytest.raises(TooBig, match="more than this server's whole memory budget"):
        store.get("huge", lambda: pytest.fail("never started"), estimate=20_000, what="tracing this text")


def test_a_result_larger_than_the_budget_is_handed_back_not_kept():
    store = Store(limit=10_000)
    assert store.get("big", lambda: blob(40_000)).numel() == 10_000
    assert "big" not in store and store.kept == 0


def test_an_estimate_makes_room_by_evicting_first():
    store = Store(limit=10_000)
    store.get("a", lambda: blob(6000))
    seen = {}
    store.get("b", lambda: seen.setdefault("used", store.used) and blob(10), estimate=8000)
    assert seen["used"] == 8000  # a was evicted before b's work started; b's reservation counted meanwhile


def test_reservations_wait_for_room_then_give_up_with_a_message():
    store = Store(limit=10_000, wait_s=0.3)
    release = threading.Event()
    t = threading.Thread(target=lambda: store.get("slow", lambda: release.wait(5) and blob(10), estimate=8000))
    t.start()
    time.sleep(0.05)
    with pytest.raises(TooBig, match="other learners' work holds"):
        store.get("other", lambda: blob(10), estimate=8000)
    release.set()
    t.join()
    assert store.get("other", lambda: blob(10), estimate=8000).numel() == 2  # room again


def test_identical_work_asked_at_once_is_made_once_and_shared():
    store = Store(limit=10_000)
    calls, results = [], []

    def make():
        calls.append(1)
        time.sleep(0.2)
        return blob(400)

    threads = [threading.Thread(target=lambda: results.append(store.get("same", make))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r is results[0] for r in results)


def test_failed_work_is_not_kept_and_the_next_asker_retries():
    store = Store(limit=10_000)
    with pytest.raises(RuntimeError):
        store.get("k", lambda: (_ for _ in ()).throw(RuntimeError("boom")), estimate=5000)
    assert store.used == 0 and store.get("k", lambda: 7) == 7


def test_a_model_is_never_pushed_out_by_results_only_by_another_model():
    store = Store(limit=10_000)
    store.get("model A", lambda: blob(5000), pin=True)
    for i in range(5):  # results come and go around it
        store.get(f"trace {i}", lambda: blob(3000), estimate=3000)
    assert "model A" in store and store.kept <= 10_000
    store.get("model B", lambda: blob(6000), pin=True)  # a second model that does not fit beside it
    assert "model B" in store and "model A" not in store


def test_work_that_cannot_fit_beside_the_models_is_refused_at_once():
    store = Store(limit=10_000, wait_s=30)
    store.get("model", lambda: blob(8000), pin=True)
    with pytest.raises(TooBig, match="beside the loaded model"):
        store.get("trace", lambda: pytest.fail("never started"), estimate=4000, what="tracing this text")


def test_an_evicted_value_still_held_is_counted_until_it_is_freed_and_free_entries_go_first():
    """Evicting what a running page still holds frees nothing: its bytes stay counted (held) until it is let go,
    the store keeps that much less meanwhile, and entries nothing else holds are evicted before held ones."""
    store = Store(limit=1000)
    a, b = torch.zeros(50, dtype=torch.float32), torch.zeros(50, dtype=torch.float32)  # 200 bytes each
    store.put("a", a)
    store.put("b", b)
    del b  # only the store holds b now; a page still holds a
    store.put("c", torch.zeros(175, dtype=torch.float32))  # 700 bytes: something must go
    assert "a" in store and "b" not in store, "the entry nothing else held went first"
    store.put("d", torch.zeros(50, dtype=torch.float32))  # 200 more: c goes (nothing else holds it), a stays
    assert "a" in store and "c" not in store and store.held == 0
    store.put("e", torch.zeros(225, dtype=torch.float32))  # 900 bytes: d goes, then a too, though held
    assert "a" not in store and "d" not in store and store.held == 200 and store.kept == 900
    store.put("f", torch.zeros(10, dtype=torch.float32))  # 40 bytes: with a held, e must go to make room
    assert "e" not in store and store.kept + store.held <= 1000
    del a
    assert store.held == 0, "freed when the page let go"
