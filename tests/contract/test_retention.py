"""Retention in the `RunStore` contract: `expired_runs` and `delete_run`, on every backend.

A purged run must leave nothing behind: on moto the table itself is scanned after each
delete, so a checkpoint, inbox event or idempotency claim left over fails the test. The
DynamoDB-only tests at the end make DynamoDB leave deletes unprocessed, as it does when
throttled, through botocore's own event hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.contract.conftest import PAGE_SIZE, REGION, TABLE
from tests.contract.test_run_store import T0, make_checkpoint, make_run

from durable.errors import ConflictError, InfrastructureError, RunNotFoundError
from durable.records import InboxEvent, RunStatus
from durable.storage._tables import create_table, make_models
from durable.storage.base import RunStore
from durable.storage.dynamodb import DynamoDBRunStore

DAY = timedelta(days=1)


def finish(
    store: RunStore,
    n: int,
    *,
    checkpoints: int = 3,
    events: int = 2,
    expires_at: Any = T0 + 30 * DAY,
    status: RunStatus = RunStatus.COMPLETED,
    **fields: Any,
) -> str:
    """Store run `n` with a log and an inbox, then end it as the worker does."""
    run = make_run(n, **fields)
    store.create_run(run)
    for seq in range(1, checkpoints + 1):
        store.append_checkpoint(run.run_id, make_checkpoint(seq))
    for i in range(events):
        store.put_inbox(InboxEvent(run.run_id, f"{i:012x}-aa", "approval", "null", T0))
    store.update_run(
        run.run_id,
        {"status": status, "finished_at": T0, "expires_at": expires_at, "wake_at": None},
    )
    return run.run_id


def table_keys(run_id: str) -> list[str]:
    """Every key stored for `run_id` in the moto table: its partition and its claims."""
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    response = table.scan()
    items = list(response["Items"])
    while "LastEvaluatedKey" in response:
        response = table.scan(ExclusiveStartKey=response["LastEvaluatedKey"])
        items.extend(response["Items"])
    return sorted(
        f"{item['pk']} {item['sk']}"
        for item in items
        if item["pk"] == f"RUN#{run_id}" or item.get("run_id") == run_id
    )


@pytest.fixture
def leftovers(backend: str) -> Callable[[str], list[str]]:
    """The keys still stored for a run, scanned from the table on moto.

    The memory store, the reference, is checked through its API only (as on both backends).
    """
    return table_keys if backend == "moto" else lambda run_id: []


def assert_gone(store: RunStore, run_id: str, leftovers: Callable[[str], list[str]]) -> None:
    assert store.get_run(run_id) is None
    assert store.load_history(run_id) == []
    assert store.list_inbox(run_id) == []
    assert run_id not in {run.run_id for run in store.list_runs(limit=1000).runs}
    assert run_id not in {run.run_id for run in store.expired_runs(T0 + 3650 * DAY, 1000)}
    assert leftovers(run_id) == []


# -- expired_runs ------------------------------------------------------------------------


def test_an_expiry_round_trips_and_can_be_cleared(store: RunStore) -> None:
    run_id = finish(store, 1, expires_at=T0 + 30 * DAY)
    run = store.get_run(run_id)
    assert run is not None
    assert run.expires_at == T0 + 30 * DAY
    assert [r.run_id for r in store.expired_runs(T0 + 30 * DAY)] == [run_id]

    store.update_run(run_id, {"expires_at": None})
    cleared = store.get_run(run_id)
    assert cleared is not None
    assert cleared.expires_at is None
    assert store.expired_runs(T0 + 3650 * DAY) == []


def test_expired_runs_lists_finished_runs_past_their_expiry_oldest_first(store: RunStore) -> None:
    # given: finished runs expiring on days 3, 1, 2, 40; one kept forever; one still live
    finish(store, 1, expires_at=T0 + 3 * DAY)
    finish(store, 2, expires_at=T0 + 1 * DAY, status=RunStatus.FAILED)
    finish(store, 3, expires_at=T0 + 2 * DAY, status=RunStatus.CANCELLED)
    finish(store, 4, expires_at=T0 + 40 * DAY, status=RunStatus.TIMED_OUT)
    finish(store, 5, expires_at=None)
    store.create_run(make_run(6, status=RunStatus.WAITING, expires_at=T0))

    # then: only finished runs whose expiry has come, oldest expiry first, `limit` at most
    assert store.expired_runs(T0) == []
    expired = store.expired_runs(T0 + 3 * DAY)
    assert [run.run_id for run in expired] == ["run_000002", "run_000003", "run_000001"]
    assert expired[0].status is RunStatus.FAILED
    assert [run.run_id for run in store.expired_runs(T0 + 3 * DAY, limit=2)] == [
        "run_000002",
        "run_000003",
    ]
    assert len(store.expired_runs(T0 + 3650 * DAY)) == 4


def test_expired_runs_pages_through_many_runs(store: RunStore) -> None:
    for n in range(1, PAGE_SIZE * 2 + 6):
        finish(store, n, checkpoints=0, events=0, expires_at=T0 + n * timedelta(minutes=1))
    expired = store.expired_runs(T0 + 3650 * DAY, limit=1000)
    assert [run.run_id for run in expired] == [f"run_{n:06d}" for n in range(1, PAGE_SIZE * 2 + 6)]


# -- delete_run --------------------------------------------------------------------------


def test_delete_run_deletes_every_item_of_the_run_and_nothing_else(
    store: RunStore, backend: str, leftovers: Callable[[str], list[str]]
) -> None:
    # given: two finished runs, each with a log, an inbox and an idempotency claim
    doomed = finish(store, 1, checkpoints=4, events=3, idempotency_key="order-1")
    kept = finish(store, 2, checkpoints=2, events=1, idempotency_key="order-2")
    assert len(leftovers(doomed)) == (1 + 4 + 3 + 1 if backend == "moto" else 0)

    # when
    deleted = store.delete_run(doomed)

    # then: the run, 4 checkpoints, 3 events and the claim; the other run untouched
    assert deleted == 1 + 4 + 3 + 1
    assert_gone(store, doomed, leftovers)
    assert store.get_run(kept) is not None
    assert [cp.seq for cp in store.load_history(kept)] == [1, 2]
    assert len(store.list_inbox(kept)) == 1
    again, created = store.create_run(make_run(3, idempotency_key="order-2"))
    assert (again.run_id, created) == (kept, False)


def test_an_idempotency_key_starts_a_new_run_after_its_run_is_purged(store: RunStore) -> None:
    first = finish(store, 1, idempotency_key="order-42")
    store.delete_run(first)

    second, created = store.create_run(make_run(2, idempotency_key="order-42"))

    assert created
    assert second.run_id == "run_000002"
    # and the key is claimed again: a third attempt gets the second run
    third, created_third = store.create_run(make_run(3, idempotency_key="order-42"))
    assert (third.run_id, created_third) == ("run_000002", False)


def test_deleting_a_purged_run_again_spares_the_claim_of_a_later_run(store: RunStore) -> None:
    first = finish(store, 1, idempotency_key="k")
    store.delete_run(first)
    store.create_run(make_run(2, idempotency_key="k"))

    assert store.delete_run(first) == 0

    again, created = store.create_run(make_run(3, idempotency_key="k"))
    assert (again.run_id, created) == ("run_000002", False)


def test_delete_run_is_idempotent(store: RunStore, leftovers: Callable[[str], list[str]]) -> None:
    run_id = finish(store, 1)
    assert store.delete_run(run_id) == 1 + 3 + 2
    assert store.delete_run(run_id) == 0
    assert store.delete_run("run_never_was") == 0
    assert_gone(store, run_id, leftovers)


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING])
def test_delete_run_refuses_a_run_that_has_not_ended(store: RunStore, status: RunStatus) -> None:
    run = make_run(1, status=status, idempotency_key="k")
    store.create_run(run)
    store.append_checkpoint(run.run_id, make_checkpoint(1))

    with pytest.raises(ConflictError):
        store.delete_run(run.run_id)

    assert store.get_run(run.run_id) == run
    assert len(store.load_history(run.run_id)) == 1
    assert store.create_run(make_run(2, idempotency_key="k"))[1] is False


def test_a_run_with_1000_checkpoints_is_deleted_completely(
    store: RunStore, leftovers: Callable[[str], list[str]]
) -> None:
    run_id = finish(store, 1, checkpoints=1000, events=5, idempotency_key="big")
    neighbour = finish(store, 2, checkpoints=30, events=0)

    assert store.delete_run(run_id) == 1 + 1000 + 5 + 1

    assert_gone(store, run_id, leftovers)
    assert len(store.load_history(neighbour)) == 30


# -- DynamoDB under throttling -----------------------------------------------------------


class UnprocessedDeletes:
    """Makes DynamoDB leave the last `held` deletes of a BatchWriteItem unprocessed.

    Before the request goes out, those deletes are taken off it; after the answer comes
    back, they are reported in `UnprocessedItems`, exactly as DynamoDB reports the writes
    it skipped under throttling. `times` requests are treated so (None: every request).
    """

    def __init__(self, held: int, times: int | None) -> None:
        self.held = held
        self.times = times
        self.requests = 0
        self._taken: dict[str, list[Any]] = {}

    def before(self, params: dict[str, Any], **_: Any) -> None:
        self.requests += 1
        if self.times is not None and self.times <= 0:
            return
        ((table, requests),) = params["RequestItems"].items()
        held = min(self.held, len(requests) - 1)
        if held > 0:
            params["RequestItems"][table] = requests[:-held]
            self._taken = {table: requests[-held:]}

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        if self._taken:
            parsed["UnprocessedItems"] = self._taken
            self._taken = {}
            if self.times is not None:
                self.times -= 1


@pytest.fixture
def dynamodb_store(aws_credentials: None) -> Iterator[DynamoDBRunStore]:
    with mock_aws():
        create_table(TABLE, REGION)
        yield DynamoDBRunStore(TABLE, region=REGION, page_size=PAGE_SIZE)


@contextmanager
def unprocessed_deletes(held: int, times: int | None) -> Iterator[UnprocessedDeletes]:
    client = make_models(TABLE, REGION, None).connection.client
    hook = UnprocessedDeletes(held, times)
    events = client.meta.events
    events.register("provide-client-params.dynamodb.BatchWriteItem", hook.before, "hold")
    events.register("after-call.dynamodb.BatchWriteItem", hook.after, "report")
    try:
        yield hook
    finally:
        events.unregister("provide-client-params.dynamodb.BatchWriteItem", unique_id="hold")
        events.unregister("after-call.dynamodb.BatchWriteItem", unique_id="report")


def test_unprocessed_deletes_are_sent_again(dynamodb_store: DynamoDBRunStore) -> None:
    run_id = finish(dynamodb_store, 1, checkpoints=60, events=0)

    with unprocessed_deletes(held=7, times=3) as hook:
        deleted = dynamodb_store.delete_run(run_id)

    assert deleted == 61
    assert dynamodb_store.load_history(run_id) == []
    assert dynamodb_store.get_run(run_id) is None
    # 60 checkpoints are 3 batches; 3 of them came back partly unprocessed and were resent
    assert hook.requests == 3 + 3


def test_a_purge_cut_short_is_finished_by_the_next(dynamodb_store: DynamoDBRunStore) -> None:
    # given: DynamoDB keeps throttling part of every batch
    run_id = finish(dynamodb_store, 1, checkpoints=60, events=2, idempotency_key="k")
    with unprocessed_deletes(held=5, times=None), pytest.raises(InfrastructureError):
        dynamodb_store.delete_run(run_id)

    # then: the run item is still there and still listed as expired, so it is found again
    assert dynamodb_store.get_run(run_id) is not None
    assert [run.run_id for run in dynamodb_store.expired_runs(T0 + 3650 * DAY)] == [run_id]
    remaining = len(dynamodb_store.load_history(run_id)) + len(dynamodb_store.list_inbox(run_id))
    assert 0 < remaining < 62

    # when: the throttling has passed, the next purge deletes the rest
    assert dynamodb_store.delete_run(run_id) == remaining + 2  # + the claim and the run
    assert dynamodb_store.get_run(run_id) is None
    assert dynamodb_store.load_history(run_id) == []
    assert dynamodb_store.create_run(make_run(2, idempotency_key="k"))[1] is True


# -- DynamoDB: an event racing the purge of its finished run ------------------------------


@contextmanager
def once_before(operation: str, action: Callable[[], None]) -> Iterator[list[str]]:
    """Run `action` just before the store's next `operation` request goes to DynamoDB."""
    client = make_models(TABLE, REGION, None).connection.client
    fired: list[str] = []

    def hook(**_: Any) -> None:
        if not fired:
            fired.append(operation)
            action()

    event = f"before-call.dynamodb.{operation}"
    client.meta.events.register(event, hook, unique_id="race")
    try:
        yield fired
    finally:
        client.meta.events.unregister(event, unique_id="race")


def test_an_event_put_while_its_run_is_purged_is_taken_back(
    dynamodb_store: DynamoDBRunStore,
) -> None:
    # given: a finished run; a late event (a callback, say) reads it, then the purge runs
    run_id = finish(dynamodb_store, 1, idempotency_key="k")
    late = InboxEvent(run_id, "00000000000a-zz", "callback:t", "null", T0)

    with (
        once_before("PutItem", lambda: dynamodb_store.delete_run(run_id)) as fired,
        pytest.raises(RunNotFoundError),
    ):
        dynamodb_store.put_inbox(late)

    # then: the sender saw the run gone after its put and took the event back
    assert fired == ["PutItem"]
    assert table_keys(run_id) == []


def test_an_event_put_during_a_purge_is_caught_by_its_last_pass(
    dynamodb_store: DynamoDBRunStore,
) -> None:
    # given: the purge has deleted the log and inbox; the event lands before the run item goes
    run_id = finish(dynamodb_store, 1)
    late = InboxEvent(run_id, "00000000000a-zz", "callback:t", "null", T0)

    with once_before("DeleteItem", lambda: dynamodb_store.put_inbox(late)) as fired:
        deleted = dynamodb_store.delete_run(run_id)

    # then: the sender found the run still there and kept its event; the purge's last pass
    # deleted it
    assert fired == ["DeleteItem"]
    assert deleted == 1 + 3 + 2 + 1
    assert table_keys(run_id) == []
