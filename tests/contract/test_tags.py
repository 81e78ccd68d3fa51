"""Tags and the finish-time range in the `Listings` contract, on every backend.

The DynamoDB store keeps one tag item per (run, tag) in the run's partition, in the
`by-task` index under a key no task has; four shards and small query pages here, so that
a tag's pages cut across shards. A page filtered on what only the runs hold (a tag with a
task or status, a finish time) examines a bounded number of entries: these tests walk
every page and compare the union, and one makes the bound tiny to see the cursor carry on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.contract.test_retention import finish, leftovers, table_keys  # noqa: F401
from tests.contract.test_run_store import make_run

from durable.errors import InputError
from durable.ids import new_run_id
from durable.records import RunRecord, RunStatus
from durable.storage import _listings
from durable.storage.base import RunStore

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def walk(store: RunStore, limit: int, **filters: Any) -> tuple[list[str], int]:
    """Every run id of a listing, page by page (newest first), and how many pages."""
    ids: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = store.list_runs(limit=limit, cursor=cursor, **filters)
        pages += 1
        assert len(page.runs) <= limit
        ids.extend(run.run_id for run in page.runs)
        cursor = page.next_cursor
        if cursor is None:
            return ids, pages


@pytest.fixture
def tagged(sharded_store: RunStore) -> tuple[RunStore, list[RunRecord]]:
    """40 runs: every one tagged "all", even ones "even", every fifth "five"; tasks
    alternate; every third completed (finished n minutes after T0)."""
    made = []
    for n in range(1, 41):
        tags = ["all", *(["even"] if n % 2 == 0 else []), *(["five"] if n % 5 == 0 else [])]
        run = make_run(
            n,
            task_id="orders" if n % 2 else "refunds",
            tags=tuple(tags),
            metadata={"n": str(n)},
        )
        sharded_store.create_run(run)
        if n % 3 == 0:
            run = sharded_store.update_run(
                run.run_id,
                {"status": RunStatus.COMPLETED, "finished_at": T0 + timedelta(minutes=n)},
            )
        made.append(run)
    return sharded_store, made


def ids(numbers: Callable[[int], bool]) -> list[str]:
    return [f"run_{n:06d}" for n in range(40, 0, -1) if numbers(n)]


def test_a_run_keeps_its_tags_in_order_and_its_metadata(sharded_store: RunStore) -> None:
    run = make_run(1, tags=("user:123", "env=prod", "a/b@c+d"), metadata={"k": "v" * 512})
    sharded_store.create_run(run)
    assert sharded_store.get_run(run.run_id) == run


@pytest.mark.parametrize("limit", [1, 3, 7, 100])
def test_runs_with_a_tag_newest_first_across_pages(
    tagged: tuple[RunStore, list[RunRecord]], limit: int
) -> None:
    store, _ = tagged
    assert walk(store, limit, tag="even")[0] == ids(lambda n: n % 2 == 0)
    assert walk(store, limit, tag="five")[0] == ids(lambda n: n % 5 == 0)
    assert walk(store, limit, tag="nobody")[0] == []


def test_a_full_page_of_a_tag_is_returned_with_a_cursor(
    tagged: tuple[RunStore, list[RunRecord]],
) -> None:
    store, _ = tagged
    page = store.list_runs(tag="all", limit=10)
    assert [run.run_id for run in page.runs] == ids(lambda n: n > 30)
    assert page.next_cursor is not None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"tag": "five", "task_id": "orders"}, lambda n: n % 5 == 0 and n % 2 == 1),
        ({"tag": "even", "status": RunStatus.COMPLETED}, lambda n: n % 6 == 0),
        (
            {"tag": "all", "task_id": "refunds", "status": RunStatus.QUEUED},
            lambda n: n % 6 in (2, 4),
        ),
        ({"tag": "even", "task_id": "orders"}, lambda n: False),
    ],
)
@pytest.mark.parametrize("limit", [1, 4, 50])
def test_a_tag_with_a_task_or_a_status(
    tagged: tuple[RunStore, list[RunRecord]],
    filters: dict[str, Any],
    expected: Callable[[int], bool],
    limit: int,
) -> None:
    store, _ = tagged
    assert walk(store, limit, **filters)[0] == ids(expected)


def test_a_tag_with_a_creation_range(sharded_store: RunStore) -> None:
    for minute in range(10):
        created = T0 + timedelta(minutes=minute)
        run = RunRecord(
            run_id=new_run_id(created),
            task_id="orders",
            status=RunStatus.QUEUED,
            payload="null",
            created_at=created,
            updated_at=created,
            tags=("odd",) if minute % 2 else ("even",),
        )
        sharded_store.create_run(run)
    found, _ = walk(
        sharded_store,
        2,
        tag="odd",
        created_after=T0 + timedelta(minutes=3),
        created_before=T0 + timedelta(minutes=8),
    )
    minutes = [
        int((run.created_at - T0) / timedelta(minutes=1))
        for run in (sharded_store.get_run(run_id) for run_id in found)
        if run is not None
    ]
    assert minutes == [7, 5, 3]


def test_a_filtered_page_examines_a_bounded_number_of_entries(
    tagged: tuple[RunStore, list[RunRecord]], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = tagged
    monkeypatch.setattr(_listings, "MAX_EXAMINED_PER_PAGE", 4)
    monkeypatch.setattr(_listings, "_FILTERED_CHUNK", 2)
    found, pages = walk(store, 50, tag="all", status=RunStatus.COMPLETED)
    assert found == ids(lambda n: n % 3 == 0)
    if backend == "moto":
        # 40 entries, 4 a page: ten pages, some of them short (or empty) with a cursor.
        assert pages == 10


@pytest.mark.parametrize(
    ("after", "before", "status", "expected"),
    [
        (10, 20, None, lambda n: n % 3 == 0 and 10 <= n < 20),
        (None, 7, None, lambda n: n in (3, 6)),
        (36, None, RunStatus.COMPLETED, lambda n: n in (36, 39)),
        (0, 100, RunStatus.QUEUED, lambda n: False),
        (20, 10, None, lambda n: False),
    ],
)
@pytest.mark.parametrize("limit", [1, 2, 50])
def test_runs_finished_in_a_range(
    tagged: tuple[RunStore, list[RunRecord]],
    after: int | None,
    before: int | None,
    status: RunStatus | None,
    expected: Callable[[int], bool],
    limit: int,
) -> None:
    store, _ = tagged
    found, _ = walk(
        store,
        limit,
        status=status,
        finished_after=T0 + timedelta(minutes=after) if after is not None else None,
        finished_before=T0 + timedelta(minutes=before) if before is not None else None,
    )
    assert found == ids(expected)


def test_a_finish_range_with_a_tag(tagged: tuple[RunStore, list[RunRecord]]) -> None:
    store, _ = tagged
    found, _ = walk(store, 2, tag="five", finished_after=T0 + timedelta(minutes=20))
    assert found == ids(lambda n: n % 15 == 0 and n >= 20)


def test_a_cursor_of_another_tag_is_refused(
    tagged: tuple[RunStore, list[RunRecord]], backend: str
) -> None:
    store, _ = tagged
    page = store.list_runs(tag="even", limit=2)
    assert page.next_cursor is not None
    if backend == "moto":  # the memory store's cursor is a plain run id
        with pytest.raises(InputError):
            store.list_runs(tag="five", limit=2, cursor=page.next_cursor)


def test_tags_are_deleted_with_their_run(
    store: RunStore,
    leftovers: Callable[[str], list[str]],  # noqa: F811
) -> None:
    doomed = finish(store, 1, tags=("a", "b"))
    kept = finish(store, 2, tags=("a",))
    deleted = store.delete_run(doomed)
    assert deleted == 1 + 3 + 2 + 2  # the run, its log, its inbox, its two tags
    assert leftovers(doomed) == []
    assert [run.run_id for run in store.list_runs(tag="a").runs] == [kept]
    assert store.list_runs(tag="b").runs == []


def test_tags_are_fixed_at_creation(store: RunStore) -> None:
    store.create_run(make_run(1, tags=("a",)))
    with pytest.raises(TypeError):
        store.update_run("run_000001", {"tags": ("b",)})


def test_the_tag_items_are_in_the_run_partition(
    sharded_store: RunStore,
    backend: str,
) -> None:
    if backend != "moto":
        pytest.skip("the table's items")
    sharded_store.create_run(make_run(1, tags=("user:1", "x")))
    assert table_keys("run_000001") == [
        "RUN#run_000001 RUN",
        "RUN#run_000001 TAG#user:1",
        "RUN#run_000001 TAG#x",
    ]
