"""The `QueueSlots` contract (`durable.storage.slots`), on memory and moto: a slot is never
handed out twice, racing acquires never pass the limit, a holder holds once, releases and
guarded drops are idempotent, and waiters come back in priority then age order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from durable.storage.base import RunStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_acquire_up_to_the_limit_and_a_holder_holds_once(store: RunStore) -> None:
    assert store.acquire_slot("q", None, "run_a", 2, NOW)
    assert store.acquire_slot("q", None, "run_a", 2, NOW + timedelta(seconds=1))  # holds it
    assert store.acquire_slot("q", None, "run_b", 2, NOW)
    assert not store.acquire_slot("q", None, "run_c", 2, NOW)
    assert store.slot_holders("q", None) == {"run_a": NOW, "run_b": NOW}
    # Each key has its own slots.
    assert store.acquire_slot("q", "tenant-1", "run_c", 2, NOW)
    assert store.slot_holders("q", "tenant-1") == {"run_c": NOW}


def test_release_is_idempotent_and_frees_the_slot(store: RunStore) -> None:
    store.acquire_slot("q", "k", "run_a", 1, NOW)
    assert store.release_slot("q", "k", "run_a") == (True, 0)
    assert store.release_slot("q", "k", "run_a") == (False, 0)
    assert store.acquire_slot("q", "k", "run_b", 1, NOW)
    assert store.release_slot("q", "k", "run_a") == (False, 1)
    assert not store.acquire_slot("q", "k", "run_c", 1, NOW)


def test_a_drop_only_removes_the_acquisition_it_saw(store: RunStore) -> None:
    store.acquire_slot("q", None, "run_a", 1, NOW)
    assert not store.drop_holder("q", None, "run_a", NOW - timedelta(seconds=1))
    assert store.drop_holder("q", None, "run_a", NOW)
    assert not store.drop_holder("q", None, "run_a", NOW)
    assert store.slot_holders("q", None) == {}


def test_racing_acquires_never_pass_the_limit(store: RunStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        granted = list(
            pool.map(lambda n: store.acquire_slot("race", None, f"run_{n:03d}", 3, NOW), range(24))
        )
    assert sum(granted) == 3
    assert len(store.slot_holders("race", None)) == 3


def test_waiters_in_priority_then_age_order(store: RunStore) -> None:
    for priority, run_id in [(0, "run_1"), (50, "run_3"), (50, "run_2"), (100, "run_4")]:
        store.add_waiter("q", None, run_id, priority)
    store.add_waiter("q", None, "run_1", 0)  # a repeat changes nothing
    store.add_waiter("q", "other", "run_9", 100)
    expected = [(100, "run_4"), (50, "run_2"), (50, "run_3"), (0, "run_1")]
    assert store.waiters("q", None, 10) == expected
    assert store.waiters("q", None, 2) == [(100, "run_4"), (50, "run_2")]
    assert store.count_waiters("q", None, 100) == 4
    assert store.count_waiters("q", None, 3) == 3  # stops at the limit
    assert store.count_waiters("q", None, 100, before=(50, "run_3")) == 2
    assert store.count_waiters("q", None, 100, before=(100, "run_4")) == 0
    store.remove_waiter("q", None, "run_2", 50)
    store.remove_waiter("q", None, "run_2", 50)
    assert store.waiters("q", None, 10) == [(100, "run_4"), (50, "run_3"), (0, "run_1")]
    assert sorted(store.queue_keys("q", 10), key=lambda key: key or "") == [None, "other"]
    assert store.queue_keys("unused", 10) == []
