"""The `Admissions` contract (`durable.storage.admission`): rate windows and debounce items
behave the same on memory and DynamoDB (moto)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from durable.errors import ConflictError, RunNotFoundError
from durable.records import RunRecord, RunStatus
from durable.storage.admission import RATE_RING
from durable.storage.base import RunStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _run(run_id: str, **changes: object) -> RunRecord:
    run = RunRecord(
        run_id=run_id,
        task_id="reindex",
        status=RunStatus.QUEUED,
        payload='"p"',
        created_at=NOW,
        updated_at=NOW,
        task_version="1",
        code_version="dev",
        wake_at=NOW + timedelta(seconds=30),
        wake_token="start-1",
    )
    return run.with_changes(**changes) if changes else run


def test_a_window_admits_its_limit_and_no_more(store: RunStore) -> None:
    taken = [store.take_rate_place("q#", 100, 3) for _ in range(5)]
    assert taken == [True, True, True, False, False]
    assert store.take_rate_place("q#", 101, 3)  # the next window is its own
    assert store.take_rate_place("q#k", 100, 3)  # and so is another key's


def test_a_slot_rolls_over_to_a_newer_window_and_never_back(store: RunStore) -> None:
    for _ in range(2):
        assert store.take_rate_place("q#", 7, 2)
    assert not store.take_rate_place("q#", 7, 2)
    # The window RATE_RING periods later reuses the slot, starting at one place.
    later = 7 + RATE_RING
    assert store.take_rate_place("q#", later, 2)
    # Window 7 was pushed out of its slot: it counts as full for ever.
    assert not store.take_rate_place("q#", 7, 2)
    assert store.take_rate_place("q#", later, 2)
    assert not store.take_rate_place("q#", later, 2)


def test_the_head_only_moves_forward(store: RunStore) -> None:
    assert store.rate_head("q#") is None
    store.advance_rate_head("q#", 5)
    store.advance_rate_head("q#", 3)
    assert store.rate_head("q#") == 5
    store.advance_rate_head("q#", 9)
    assert store.rate_head("q#") == 9
    assert store.rate_head("q#other") is None


def test_a_debounced_run_is_created_once_per_key_state(store: RunStore) -> None:
    assert store.debounced_run("reindex", "") is None
    store.create_debounced_run(_run("run_a"), "", None)
    assert store.debounced_run("reindex", "") == "run_a"
    assert store.get_run("run_a") == _run("run_a")
    # A trigger that read "none" lost the race: nothing is written.
    with pytest.raises(ConflictError):
        store.create_debounced_run(_run("run_b"), "", None)
    assert store.get_run("run_b") is None
    # One that read run_a makes its own run the pending one.
    store.create_debounced_run(_run("run_c"), "", "run_a")
    assert store.debounced_run("reindex", "") == "run_c"
    with pytest.raises(ConflictError):
        store.create_debounced_run(_run("run_d"), "", "run_a")
    assert store.get_run("run_d") is None
    store.create_debounced_run(_run("run_e"), "tenant:1", None)  # keys are apart
    assert store.debounced_run("reindex", "tenant:1") == "run_e"


def test_a_pending_run_is_replaced_only_while_it_has_not_started(store: RunStore) -> None:
    store.create_debounced_run(_run("run_a"), "", None)
    later = NOW + timedelta(minutes=1)
    changes = {"payload": '"q"', "wake_at": later, "wake_token": "start-2"}
    replaced = store.replace_pending_run("run_a", "start-1", changes)
    assert (replaced.payload, replaced.wake_at, replaced.wake_token) == ('"q"', later, "start-2")
    assert store.get_run("run_a") == replaced
    with pytest.raises(ConflictError):  # the token moved on
        store.replace_pending_run("run_a", "start-1", changes)
    store.acquire_lease("run_a", "worker", later, later + timedelta(minutes=15))
    with pytest.raises(ConflictError):  # it started
        store.replace_pending_run("run_a", "start-2", {"payload": '"r"'})
    assert store.get_run("run_a").payload == '"q"'  # type: ignore[union-attr]
    with pytest.raises(RunNotFoundError):
        store.replace_pending_run("run_zz", "start-1", changes)


def test_claimed_run_names_the_run_of_a_live_key(store: RunStore) -> None:
    run = _run(
        "run_k", task_id="t", idempotency_key="k", idempotency_expires_at=NOW + timedelta(hours=1)
    )
    store.create_run(run)
    assert store.claimed_run("t", "k", NOW) == run
    assert store.claimed_run("t", "k", NOW + timedelta(hours=2)) is None  # expired
    assert store.claimed_run("t", "other", NOW) is None


def test_racing_takers_never_get_more_places_than_the_limit(store: RunStore) -> None:
    # Eight triggers at once, five places each asked for, in windows whose slots roll over.
    def take(worker: int) -> list[tuple[int, bool]]:
        return [(window, store.take_rate_place("q#", window, 10)) for window in (3, 3, 4, 4, 4)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [taken for batch in pool.map(take, range(8)) for taken in batch]
    granted = Counter(window for window, taken in results if taken)
    assert granted == {3: 10, 4: 10}


def test_a_debounced_run_is_created_with_its_tags(store: RunStore) -> None:
    store.create_debounced_run(_run("run_t", tags=("user:1", "env=prod")), "", None)
    assert [run.run_id for run in store.list_runs(tag="user:1").runs] == ["run_t"]
    assert store.get_run("run_t").tags == ("user:1", "env=prod")  # type: ignore[union-attr]
