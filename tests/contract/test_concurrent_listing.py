"""A listing queries its shards at once (DynamoDB store, on moto): the same pages as one
shard after another, the same errors; the sweeper's queries stay in the caller's thread.

Concurrency is proved without timing: each shard's first Query waits at a barrier of as
many parties as there are shards, which only opens if they are all out at once (a listing
that queried them one after another would break the barrier at its timeout and fail).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.contract.conftest import SHARDS
from tests.contract.test_run_store import T0
from tests.contract.test_shards import make_due, number, populate

from durable.errors import InfrastructureError
from durable.records import RunStatus
from durable.storage._listings import IndexReader, shard_query_pool
from durable.storage.base import RunPage, RunStore
from durable.storage.dynamodb import DynamoDBRunStore

# Long enough for any machine to start SHARDS queries; only a failing test waits it out.
BARRIER_TIMEOUT_SECONDS = 30

pytestmark = pytest.mark.parametrize("backend", ["moto"])


@pytest.fixture
def moto_store(sharded_store: RunStore) -> DynamoDBRunStore:
    assert isinstance(sharded_store, DynamoDBRunStore)
    return sharded_store


@contextmanager
def before_each_query(
    store: DynamoDBRunStore, hook: Callable[[dict[str, Any]], None]
) -> Iterator[None]:
    """Call `hook` with each Query the store's botocore client sends (the request: its
    JSON `body` names the index key, `RUN#2` for shard 2 of `all-runs`)."""
    events = store._models.connection.client.meta.events

    def before_call(params: dict[str, Any], **_: Any) -> None:
        hook(params)  # returns None: botocore then sends the request

    # The models (and their client) are shared by every store of the table: unregister.
    events.register("before-call.dynamodb.Query", before_call)
    try:
        yield
    finally:
        events.unregister("before-call.dynamodb.Query", before_call)


def pages_of(list_page: Callable[[str | None], RunPage]) -> list[tuple[list[int], str | None]]:
    """Every page of a listing with its cursor, from the first."""
    pages: list[tuple[list[int], str | None]] = []
    cursor: str | None = None
    while True:
        page = list_page(cursor)
        pages.append(([number(run) for run in page.runs], page.next_cursor))
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_a_listing_queries_every_shard_at_once(moto_store: DynamoDBRunStore) -> None:
    populate(moto_store)
    moto_store.list_runs(limit=1)  # the shard count is read and the client built
    barrier = threading.Barrier(SHARDS, timeout=BARRIER_TIMEOUT_SECONDS)
    queries = 0
    lock = threading.Lock()

    def first_wave_meets(_params: dict[str, Any]) -> None:
        nonlocal queries
        with lock:
            queries += 1
            first_wave = queries <= SHARDS
        if first_wave:  # later pages of a shard are read lazily, by the merge
            barrier.wait()

    with before_each_query(moto_store, first_wave_meets):
        page = moto_store.list_runs(limit=5)

    assert [number(run) for run in page.runs] == [90, 89, 88, 87, 86]
    assert queries >= SHARDS
    assert not barrier.broken


@pytest.mark.parametrize(
    ("task_id", "status"),
    [(None, None), ("orders", None), (None, RunStatus.WAITING), ("orders", RunStatus.COMPLETED)],
)
@pytest.mark.parametrize("limit", [1, 7, 40])
def test_the_pool_gives_the_pages_and_cursors_of_one_shard_after_another(
    moto_store: DynamoDBRunStore, task_id: str | None, status: RunStatus | None, limit: int
) -> None:
    populate(moto_store)

    def reader(concurrent: bool) -> IndexReader:
        return IndexReader(
            moto_store._models.run,
            SHARDS,
            None,
            moto_store._runs_in_order,
            executor=shard_query_pool() if concurrent else None,
        )

    at_once, in_turn = reader(concurrent=True), reader(concurrent=False)

    concurrent_pages = pages_of(lambda cursor: at_once.list_runs(task_id, status, limit, cursor))
    sequential_pages = pages_of(lambda cursor: in_turn.list_runs(task_id, status, limit, cursor))
    store_pages = pages_of(
        lambda cursor: moto_store.list_runs(
            task_id=task_id, status=status, limit=limit, cursor=cursor
        )
    )

    assert concurrent_pages == sequential_pages == store_pages
    assert len(concurrent_pages) > 1 or limit == 40


def test_a_failing_shard_query_is_translated_as_before(moto_store: DynamoDBRunStore) -> None:
    populate(moto_store)
    moto_store.list_runs(limit=1)

    def throttle_shard_2(params: dict[str, Any]) -> None:
        if b'"RUN#2"' in params["body"]:
            response: Any = {
                "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(response, "Query")

    with before_each_query(moto_store, throttle_shard_2), pytest.raises(InfrastructureError):
        moto_store.list_runs(limit=5)
    assert len(moto_store.list_runs(limit=5).runs) == 5  # the pool is still good


def test_the_sweepers_queries_stay_in_the_callers_thread(moto_store: DynamoDBRunStore) -> None:
    make_due(moto_store, 20)
    threads: set[str] = set()

    with before_each_query(
        moto_store, lambda _params: threads.add(threading.current_thread().name)
    ):
        due = moto_store.due_runs(T0 + timedelta(hours=1), limit=100)
        moto_store.expired_runs(T0 + timedelta(hours=1), limit=100)

    assert len(due) == 20
    assert threads == {threading.current_thread().name}
