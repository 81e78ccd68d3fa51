"""The `RunStore` contract (see `durable.storage.base`), run against every backend.

The memory store is the reference; the DynamoDB store runs on moto with small query pages,
so every listing and history read here crosses page boundaries.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable.errors import ConflictError, RunNotFoundError
from durable.records import (
    Checkpoint,
    CheckpointKind,
    ErrorInfo,
    InboxEvent,
    RunRecord,
    RunStatus,
)
from durable.storage.base import RunStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
LIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.RETRYING)


def make_run(n: int, task_id: str = "orders", **fields: Any) -> RunRecord:
    """Run number `n`; higher numbers sort as newer, as real run ids do."""
    values: dict[str, Any] = {
        "run_id": f"run_{n:06d}",
        "task_id": task_id,
        "status": RunStatus.QUEUED,
        "payload": f'{{"n": {n}}}',
        "created_at": T0 + timedelta(seconds=n),
        "updated_at": T0 + timedelta(seconds=n),
    }
    values.update(fields)
    return RunRecord(**values)


def make_checkpoint(seq: int, **fields: Any) -> Checkpoint:
    values: dict[str, Any] = {
        "seq": seq,
        "kind": CheckpointKind.STEP_COMPLETED,
        "op": seq - 1,
        "name": f"step-{seq}",
        "task_attempt": 1,
        "at": T0 + timedelta(milliseconds=seq),
        "value": f'{{"seq": {seq}}}',
    }
    values.update(fields)
    return Checkpoint(**values)


# -- create / get ------------------------------------------------------------------------


def test_create_then_get_round_trips_every_field(store: RunStore) -> None:
    run = make_run(
        1,
        status=RunStatus.WAITING,
        attempt=3,
        started_at=T0 + timedelta(microseconds=123456),
        result='{"ok": true}',
        error=ErrorInfo("ValueError", "bad", traceback="Traceback ..."),
        idempotency_key="key-1",
        task_version="7",
        code_version="abc123",
        wake_at=T0 + timedelta(hours=24),
        wake_token="tok",
        waiting_for="approval",
        lease_owner="worker-a",
        lease_expires=T0 + timedelta(minutes=15),
        checkpoints=4,
        cancel_requested=True,
        parent_run_id="run_parent",
        tags=("team:payments", "env=test"),
        metadata={"team": "payments", "env": "test"},
        batch_slot="1:2:3",
        origin="fork:run_original@4",
        idempotency_expires_at=T0 + timedelta(hours=24),
    )

    stored, created = store.create_run(run)

    assert created is True
    assert stored == run
    assert store.get_run(run.run_id) == run


def test_get_unknown_run_is_none(store: RunStore) -> None:
    assert store.get_run("run_missing") is None


def test_create_same_run_id_twice_conflicts(store: RunStore) -> None:
    store.create_run(make_run(1))

    with pytest.raises(ConflictError):
        store.create_run(make_run(1, payload='"other"'))

    stored = store.get_run("run_000001")
    assert stored is not None
    assert stored.payload == '{"n": 1}'


def test_idempotent_create_returns_the_first_run(store: RunStore) -> None:
    first, created_first = store.create_run(make_run(1, idempotency_key="order-42"))

    again, created_again = store.create_run(make_run(2, idempotency_key="order-42"))

    assert created_first is True
    assert created_again is False
    assert again == first
    assert store.get_run("run_000002") is None


def test_idempotency_key_is_scoped_to_the_task(store: RunStore) -> None:
    store.create_run(make_run(1, task_id="orders", idempotency_key="k"))

    other, created = store.create_run(make_run(2, task_id="refunds", idempotency_key="k"))

    assert created is True
    assert other.run_id == "run_000002"


# -- the log -----------------------------------------------------------------------------


def test_append_checkpoint_fences_a_taken_slot(store: RunStore) -> None:
    store.create_run(make_run(1))
    winner = make_checkpoint(1, value='"winner"')
    store.append_checkpoint("run_000001", winner)

    with pytest.raises(ConflictError):
        store.append_checkpoint("run_000001", make_checkpoint(1, value='"loser"'))

    assert store.load_history("run_000001") == [winner]


def test_checkpoint_round_trips_every_field(store: RunStore) -> None:
    store.create_run(make_run(1))
    failed = make_checkpoint(
        1,
        kind=CheckpointKind.STEP_FAILED,
        step_attempt=2,
        value=None,
        error=ErrorInfo("TimeoutError", "slow", non_retryable=True),
        wake_at=T0 + timedelta(seconds=30),
    )
    sleep = make_checkpoint(2, kind=CheckpointKind.SLEEP_STARTED, value=None, wake_at=T0)
    store.append_checkpoint("run_000001", failed)
    store.append_checkpoint("run_000001", sleep)

    assert store.load_history("run_000001") == [failed, sleep]


def test_load_history_returns_1000_checkpoints_in_order(store: RunStore) -> None:
    store.create_run(make_run(1))
    # Written out of order: the log is ordered by seq, not by arrival.
    for seq in reversed(range(1, 1001)):
        store.append_checkpoint("run_000001", make_checkpoint(seq))

    history = store.load_history("run_000001")

    assert [checkpoint.seq for checkpoint in history] == list(range(1, 1001))
    assert history[999] == make_checkpoint(1000)


def test_history_of_a_run_without_checkpoints_is_empty(store: RunStore) -> None:
    store.create_run(make_run(1))

    assert store.load_history("run_000001") == []
    assert store.load_history("run_missing") == []


def test_logs_of_different_runs_are_separate(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.create_run(make_run(2))
    store.append_checkpoint("run_000001", make_checkpoint(1))

    store.append_checkpoint("run_000002", make_checkpoint(1, value='"two"'))

    assert [cp.value for cp in store.load_history("run_000002")] == ['"two"']
    assert [cp.value for cp in store.load_history("run_000001")] == ['{"seq": 1}']


def test_load_history_after_a_seq_returns_only_the_later_slots(store: RunStore) -> None:
    # given a log longer than a query page, and the run's other items (inbox, event ids)
    # under the same partition, which sort after the log's slots
    store.create_run(make_run(1))
    for seq in range(1, 31):
        store.append_checkpoint("run_000001", make_checkpoint(seq))
    store.put_inbox(
        InboxEvent(
            run_id="run_000001", inbox_id="000000000001-aa", name="go", data="null", received_at=T0
        )
    )
    store.claim_event_id("run_000001", "event-1", "000000000001-aa")

    # when / then
    assert [cp.seq for cp in store.load_history("run_000001", after_seq=12)] == list(range(13, 31))
    assert store.load_history("run_000001", after_seq=29) == [make_checkpoint(30)]
    assert store.load_history("run_000001", after_seq=30) == []
    assert store.load_history("run_000001", after_seq=0) == store.load_history("run_000001")
    assert store.load_history("run_missing", after_seq=3) == []


def test_load_history_after_a_seq_sees_an_append_made_since(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.append_checkpoint("run_000001", make_checkpoint(1))
    assert store.load_history("run_000001", after_seq=1) == []

    store.append_checkpoint("run_000001", make_checkpoint(2))

    assert store.load_history("run_000001", after_seq=1) == [make_checkpoint(2)]


# -- leases ------------------------------------------------------------------------------


def test_acquire_lease_takes_the_run(store: RunStore) -> None:
    store.create_run(make_run(1))
    expires = T0 + timedelta(minutes=15)

    leased = store.acquire_lease("run_000001", "worker-a", T0, expires)

    assert leased.status is RunStatus.RUNNING
    assert leased.lease_owner == "worker-a"
    assert leased.lease_expires == expires
    assert leased.wake_at == expires
    assert leased.updated_at == T0
    assert leased.started_at == T0
    assert store.get_run("run_000001") == leased


def test_acquire_lease_keeps_an_earlier_wake_up_and_brings_a_later_one_forward(
    store: RunStore,
) -> None:
    store.create_run(make_run(1, wake_at=T0))  # due since it was triggered
    store.create_run(make_run(2, status=RunStatus.WAITING, wake_at=T0 + timedelta(hours=1)))
    expires = T0 + timedelta(minutes=15)

    early = store.acquire_lease("run_000001", "worker-a", T0 + MINUTE, expires)
    late = store.acquire_lease("run_000002", "worker-b", T0 + MINUTE, expires)

    assert (early.wake_at, early.lease_owner) == (T0, "worker-a")
    assert (late.wake_at, late.lease_owner, late.status) == (expires, "worker-b", RunStatus.RUNNING)
    with pytest.raises(ConflictError):
        store.acquire_lease("run_000002", "worker-c", T0 + MINUTE, expires)


def test_acquire_lease_conflicts_while_another_lease_is_live(store: RunStore) -> None:
    store.create_run(make_run(1))
    held = store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))

    with pytest.raises(ConflictError):
        store.acquire_lease(
            "run_000001", "worker-b", T0 + timedelta(minutes=14), T0 + timedelta(minutes=29)
        )

    assert store.get_run("run_000001") == held


def test_acquire_lease_succeeds_once_the_lease_expired(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))
    later = T0 + timedelta(minutes=15)  # expiry is inclusive: the lease is free at its end

    taken = store.acquire_lease("run_000001", "worker-b", later, later + timedelta(minutes=15))

    assert taken.lease_owner == "worker-b"
    assert taken.started_at == T0  # the first start is kept
    assert taken.updated_at == later


def test_acquire_lease_refuses_a_finished_run(store: RunStore) -> None:
    store.create_run(make_run(1, status=RunStatus.COMPLETED, result="1"))

    with pytest.raises(ConflictError):
        store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))


def test_acquire_lease_on_unknown_run(store: RunStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.acquire_lease("run_missing", "worker-a", T0, T0 + timedelta(minutes=15))


# -- update_run --------------------------------------------------------------------------


def test_update_run_applies_changes_when_conditions_hold(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))

    updated = store.update_run(
        "run_000001",
        {
            "status": RunStatus.FAILED,
            "error": ErrorInfo("KeyError", "'id'", non_retryable=True),
            "finished_at": T0 + timedelta(seconds=5),
            "lease_owner": None,
            "lease_expires": None,
            "wake_at": None,
            "attempt": 2,
            "metadata": {"k": "v"},
        },
        expect_owner="worker-a",
        expect_status=[RunStatus.RUNNING],
    )

    assert updated.status is RunStatus.FAILED
    assert updated.error == ErrorInfo("KeyError", "'id'", non_retryable=True)
    assert updated.lease_owner is None
    assert updated.lease_expires is None
    assert updated.wake_at is None
    assert updated.attempt == 2
    assert updated.metadata == {"k": "v"}
    assert store.get_run("run_000001") == updated


def test_update_run_with_none_clears_a_field(store: RunStore) -> None:
    store.create_run(make_run(1, result='"r"', waiting_for="approval", metadata={"a": "b"}))

    updated = store.update_run("run_000001", {"result": None, "waiting_for": None, "metadata": {}})

    assert updated.result is None
    assert updated.waiting_for is None
    assert updated.metadata == {}
    assert store.get_run("run_000001") == updated


def test_update_run_conflicts_when_the_owner_differs(store: RunStore) -> None:
    store.create_run(make_run(1))
    held = store.acquire_lease("run_000001", "worker-b", T0, T0 + timedelta(minutes=15))

    with pytest.raises(ConflictError):
        store.update_run("run_000001", {"status": RunStatus.COMPLETED}, expect_owner="worker-a")

    assert store.get_run("run_000001") == held


def test_update_run_conflicts_when_the_status_differs(store: RunStore) -> None:
    store.create_run(make_run(1, status=RunStatus.CANCELLED))

    with pytest.raises(ConflictError):
        store.update_run("run_000001", {"status": RunStatus.QUEUED}, expect_status=LIVE)

    stored = store.get_run("run_000001")
    assert stored is not None
    assert stored.status is RunStatus.CANCELLED


def test_update_run_without_lease_fails_an_owner_condition(store: RunStore) -> None:
    store.create_run(make_run(1))

    with pytest.raises(ConflictError):
        store.update_run("run_000001", {"checkpoints": 1}, expect_owner="worker-a")


def test_update_run_on_unknown_run(store: RunStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.update_run("run_missing", {"status": RunStatus.CANCELLED})


def test_update_run_with_no_changes_checks_conditions_only(store: RunStore) -> None:
    run, _ = store.create_run(make_run(1))

    assert store.update_run("run_000001", {}, expect_status=[RunStatus.QUEUED]) == run
    with pytest.raises(ConflictError):
        store.update_run("run_000001", {}, expect_status=[RunStatus.RUNNING])


# -- inbox -------------------------------------------------------------------------------


def test_inbox_lists_events_in_arrival_order(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.create_run(make_run(2))
    events = [
        InboxEvent("run_000001", f"{millis:012x}-aa", "approval", f'{{"i": {millis}}}', T0)
        for millis in (3, 1, 2)
    ]
    for event in events:
        store.put_inbox(event)
    store.put_inbox(InboxEvent("run_000002", "000000000001-bb", "other", "null", T0))

    listed = store.list_inbox("run_000001")

    assert [event.data for event in listed] == ['{"i": 1}', '{"i": 2}', '{"i": 3}']
    assert listed[0] == events[1]
    assert store.list_inbox("run_missing") == []


def test_put_inbox_on_unknown_run(store: RunStore) -> None:
    with pytest.raises(RunNotFoundError):
        store.put_inbox(InboxEvent("run_missing", "000000000001-aa", "approval", "null", T0))


def test_an_event_id_is_claimed_once_and_deleted_with_its_run(store: RunStore) -> None:
    store.create_run(make_run(1, status=RunStatus.COMPLETED))
    store.create_run(make_run(2))

    first = store.claim_event_id("run_000001", "delivery-7", "000000000001-aa")
    again = store.claim_event_id("run_000001", "delivery-7", "000000000009-zz")
    other_run = store.claim_event_id("run_000002", "delivery-7", "000000000002-bb")
    other_id = store.claim_event_id("run_000001", "delivery-8", "000000000003-cc")

    assert (first, again) == ("000000000001-aa", "000000000001-aa")
    assert (other_run, other_id) == ("000000000002-bb", "000000000003-cc")
    with pytest.raises(RunNotFoundError):
        store.claim_event_id("run_missing", "delivery-7", "000000000001-aa")
    assert store.delete_run("run_000001") == 3  # the run and its two claims
    store.create_run(make_run(1))
    assert store.claim_event_id("run_000001", "delivery-7", "00000000000f-ff") == (
        "00000000000f-ff"
    )


# -- listings ----------------------------------------------------------------------------


@pytest.fixture
def seven_runs(store: RunStore) -> RunStore:
    """run 1..7: odd numbers task "orders", even "refunds"; 3 and 6 completed."""
    for n in range(1, 8):
        status = RunStatus.COMPLETED if n in (3, 6) else RunStatus.QUEUED
        store.create_run(make_run(n, task_id="orders" if n % 2 else "refunds", status=status))
    return store


def ids(runs: list[RunRecord]) -> list[int]:
    return [int(run.run_id.removeprefix("run_")) for run in runs]


def test_list_runs_newest_first(seven_runs: RunStore) -> None:
    page = seven_runs.list_runs()

    assert ids(page.runs) == [7, 6, 5, 4, 3, 2, 1]
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("task_id", "status", "expected"),
    [
        ("orders", None, [7, 5, 3, 1]),
        ("refunds", None, [6, 4, 2]),
        (None, RunStatus.COMPLETED, [6, 3]),
        (None, RunStatus.QUEUED, [7, 5, 4, 2, 1]),
        ("orders", RunStatus.COMPLETED, [3]),
        ("refunds", RunStatus.QUEUED, [4, 2]),
        ("orders", RunStatus.FAILED, []),
        ("nobody", None, []),
    ],
)
def test_list_runs_filters(
    seven_runs: RunStore, task_id: str | None, status: RunStatus | None, expected: list[int]
) -> None:
    page = seven_runs.list_runs(task_id=task_id, status=status)

    assert ids(page.runs) == expected
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("task_id", "status", "limit", "expected_pages"),
    [
        (None, None, 3, [[7, 6, 5], [4, 3, 2], [1]]),
        (None, None, 7, [[7, 6, 5, 4, 3, 2, 1]]),
        ("orders", None, 2, [[7, 5], [3, 1]]),
        (None, RunStatus.QUEUED, 2, [[7, 5], [4, 2], [1]]),
        ("orders", RunStatus.QUEUED, 1, [[7], [5], [1]]),
        ("refunds", RunStatus.QUEUED, 1, [[4], [2]]),
    ],
)
def test_list_runs_pages_with_a_cursor(
    seven_runs: RunStore,
    task_id: str | None,
    status: RunStatus | None,
    limit: int,
    expected_pages: list[list[int]],
) -> None:
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page = seven_runs.list_runs(task_id=task_id, status=status, limit=limit, cursor=cursor)
        pages.append(ids(page.runs))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert pages == expected_pages


def test_list_runs_sees_status_changes(seven_runs: RunStore) -> None:
    seven_runs.update_run("run_000007", {"status": RunStatus.COMPLETED})

    assert ids(seven_runs.list_runs(status=RunStatus.COMPLETED).runs) == [7, 6, 3]
    assert ids(seven_runs.list_runs(status=RunStatus.QUEUED).runs) == [5, 4, 2, 1]


def test_list_runs_many_pages(store: RunStore) -> None:
    for n in range(1, 61):
        store.create_run(make_run(n, task_id="orders" if n % 3 else "refunds"))

    seen: list[int] = []
    cursor: str | None = None
    while True:
        page = store.list_runs(task_id="orders", limit=8, cursor=cursor)
        seen.extend(ids(page.runs))
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert seen == [n for n in range(60, 0, -1) if n % 3]


# -- due runs ----------------------------------------------------------------------------


def test_due_runs_lists_runs_whose_wake_up_is_due(store: RunStore) -> None:
    store.create_run(make_run(1, status=RunStatus.WAITING, wake_at=T0 + timedelta(minutes=5)))
    store.create_run(make_run(2, status=RunStatus.RETRYING, wake_at=T0 + timedelta(minutes=1)))
    store.create_run(make_run(3, status=RunStatus.WAITING, wake_at=T0 + timedelta(hours=1)))
    store.create_run(make_run(4, status=RunStatus.WAITING))  # waits for an event, no timeout
    store.create_run(make_run(5, status=RunStatus.COMPLETED))  # finished, nothing pending
    store.create_run(make_run(6, status=RunStatus.QUEUED, wake_at=T0 + timedelta(minutes=10)))
    # finished, the follow-ups of its end (its parent's wake-up...) pending: an outbox
    store.create_run(make_run(7, status=RunStatus.FAILED, wake_at=T0 + timedelta(minutes=2)))

    due = store.due_runs(T0 + timedelta(minutes=10))

    assert ids(due) == [2, 7, 1, 6]  # by wake_at, the bound included
    assert ids(store.due_runs(T0 + timedelta(minutes=10), limit=2)) == [2, 7]
    assert store.due_runs(T0) == []


def test_due_runs_pages_after_the_last_run_of_a_page(store: RunStore) -> None:
    for n in range(1, 8):  # two runs share each wake_at: the run id breaks the tie
        store.create_run(make_run(n, status=RunStatus.WAITING, wake_at=T0 + (n // 2) * MINUTE))
    before = T0 + timedelta(hours=1)

    pages: list[list[int]] = []
    after = None
    while page := store.due_runs(before, limit=3, after=after):
        pages.append(ids(page))
        after = page[-1]

    assert pages == [[1, 2, 3], [4, 5, 6], [7]]


def test_due_runs_follow_leases_and_updates(store: RunStore) -> None:
    store.create_run(make_run(1))
    store.create_run(make_run(2))
    store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=15))
    store.acquire_lease("run_000002", "worker-b", T0, T0 + timedelta(minutes=15))
    after_expiry = T0 + timedelta(minutes=20)
    assert ids(store.due_runs(after_expiry)) == [1, 2]  # a lost invocation is found again

    store.update_run("run_000001", {"status": RunStatus.COMPLETED, "wake_at": None})
    store.update_run("run_000002", {"wake_at": T0 + timedelta(hours=2)})
    assert store.due_runs(after_expiry) == []

    store.update_run("run_000002", {"status": RunStatus.WAITING, "wake_at": T0})
    assert ids(store.due_runs(after_expiry)) == [2]

    store.update_run("run_000002", {"wake_at": None})
    assert store.due_runs(after_expiry) == []


def test_update_run_can_require_what_the_run_waits_for(store: RunStore) -> None:
    store.create_run(make_run(1, status=RunStatus.WAITING, waiting_for="approval"))

    with pytest.raises(ConflictError):
        store.update_run("run_000001", {"wake_at": T0}, expect_waiting_for="other")
    assert store.get_run("run_000001").wake_at is None  # type: ignore[union-attr]

    updated = store.update_run(
        "run_000001",
        {"wake_at": T0},
        expect_status=[RunStatus.WAITING],
        expect_waiting_for="approval",
    )
    assert updated.wake_at == T0
    assert ids(store.due_runs(T0)) == [1]


def test_each_lease_adds_to_the_crash_streak_until_an_update_resets_it(store: RunStore) -> None:
    store.create_run(make_run(1))
    first = store.acquire_lease("run_000001", "worker-a", T0, T0 + timedelta(minutes=1))
    second = store.acquire_lease(
        "run_000001", "worker-b", T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)
    )
    assert (first.crash_streak, second.crash_streak) == (1, 2)
    reset = store.update_run("run_000001", {"crash_streak": 0}, expect_owner="worker-b")
    assert reset.crash_streak == 0
