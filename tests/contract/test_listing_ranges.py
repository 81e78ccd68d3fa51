"""`list_runs` by creation time (`created_after`, `created_before`), on every backend.

Run ids carry their creation instant (`durable.ids`), so these runs get real ids; the
DynamoDB store answers a range with a key condition on every shard query (small pages and
four shards here, so that pages cut across both).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from durable.ids import new_run_id
from durable.records import RunRecord, RunStatus
from durable.storage.base import RunStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def runs(sharded_store: RunStore) -> tuple[RunStore, list[RunRecord]]:
    """30 runs, one a minute from T0: tasks alternate, every third one completed."""
    made: list[RunRecord] = []
    for n in range(30):
        created = T0 + timedelta(minutes=n)
        run = RunRecord(
            run_id=new_run_id(created),
            task_id="orders" if n % 2 == 0 else "refunds",
            status=RunStatus.COMPLETED if n % 3 == 0 else RunStatus.QUEUED,
            payload="null",
            created_at=created,
            updated_at=created,
        )
        sharded_store.create_run(run)
        made.append(run)
    return sharded_store, made


def minutes(runs: list[RunRecord]) -> list[int]:
    return [int((run.created_at - T0) / timedelta(minutes=1)) for run in runs]


def all_pages(store: RunStore, limit: int, **filters: object) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page = store.list_runs(limit=limit, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append(minutes(page.runs))
        cursor = page.next_cursor
        if cursor is None:
            return pages


@pytest.mark.parametrize(
    ("after", "before", "task_id", "status", "expected"),
    [
        (10, 15, None, None, [14, 13, 12, 11, 10]),
        (25, None, None, None, [29, 28, 27, 26, 25]),
        (None, 3, None, None, [2, 1, 0]),
        (10, 20, "orders", None, [18, 16, 14, 12, 10]),
        (10, 20, None, RunStatus.COMPLETED, [18, 15, 12]),
        (10, 20, "orders", RunStatus.COMPLETED, [18, 12]),
        (0, 30, "refunds", RunStatus.QUEUED, [29, 25, 23, 19, 17, 13, 11, 7, 5, 1]),
        (20, 10, None, None, []),
        (40, None, None, None, []),
    ],
)
def test_a_creation_time_range_with_task_and_status(
    runs: tuple[RunStore, list[RunRecord]],
    after: int | None,
    before: int | None,
    task_id: str | None,
    status: RunStatus | None,
    expected: list[int],
) -> None:
    store, _ = runs
    page = store.list_runs(
        task_id=task_id,
        status=status,
        created_after=T0 + timedelta(minutes=after) if after is not None else None,
        created_before=T0 + timedelta(minutes=before) if before is not None else None,
    )
    assert minutes(page.runs) == expected
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("filters", "limit", "expected"),
    [
        ({}, 4, [[19, 18, 17, 16], [15, 14, 13, 12], [11, 10]]),
        ({"task_id": "orders"}, 2, [[18, 16], [14, 12], [10]]),
        ({"status": RunStatus.QUEUED}, 3, [[19, 17, 16], [14, 13, 11], [10]]),
    ],
)
def test_a_range_pages_with_its_cursor(
    runs: tuple[RunStore, list[RunRecord]],
    filters: dict[str, object],
    limit: int,
    expected: list[list[int]],
) -> None:
    store, _ = runs
    window = {
        "created_after": T0 + timedelta(minutes=10),
        "created_before": T0 + timedelta(minutes=20),
    }
    assert all_pages(store, limit, **filters, **window) == expected


def test_the_range_bounds_are_inclusive_then_exclusive_to_the_millisecond(
    runs: tuple[RunStore, list[RunRecord]],
) -> None:
    store, made = runs
    at = made[5].created_at
    assert minutes(
        store.list_runs(created_after=at, created_before=at + timedelta(milliseconds=1)).runs
    ) == [5]
    assert (
        minutes(store.list_runs(created_after=at + timedelta(milliseconds=1), limit=100).runs)[-1]
        == 6
    )
    assert minutes(store.list_runs(created_before=at, limit=100).runs)[0] == 4


def test_a_cursor_of_one_range_is_refused_for_another(
    runs: tuple[RunStore, list[RunRecord]], backend: str
) -> None:
    from durable.errors import InputError

    store, _ = runs
    first = store.list_runs(limit=2, created_after=T0 + timedelta(minutes=10))
    assert first.next_cursor is not None
    if backend == "memory":
        pytest.skip("the memory store's cursor is a run id: it names no listing")
    with pytest.raises(InputError):
        store.list_runs(limit=2, cursor=first.next_cursor, created_after=T0)
