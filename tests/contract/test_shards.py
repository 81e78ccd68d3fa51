"""Sharded indexes in the `RunStore` contract: listings, cursors, due and expired runs, the
sweeper and the retention purge, on a table of `SHARDS` index shards.

On moto every listing here is a fan-out over the shards and a merge; the memory store is the
reference it must match run for run. The pages are sized to end in the middle of shards.
"""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from tests.contract.conftest import REGION, SHARDS, TABLE
from tests.contract.test_run_store import MINUTE, T0, make_run

from durable.clock import VirtualClock
from durable.errors import ConflictError, InputError
from durable.queues.memory import MemoryWakeQueue
from durable.records import RunRecord, RunStatus, WakeUp
from durable.services.sweeper import purge_expired, sweep
from durable.storage._listings import IndexReader
from durable.storage._shards import shard_of
from durable.storage.base import RunStore
from durable.storage.dynamodb import DynamoDBRunStore

TASKS = ("orders", "refunds", "emails")
STATUSES = (RunStatus.QUEUED, RunStatus.WAITING, RunStatus.COMPLETED, RunStatus.FAILED)
RUNS = 90


def number(run: RunRecord) -> int:
    return int(run.run_id.removeprefix("run_"))


def populate(store: RunStore) -> list[RunRecord]:
    """`RUNS` runs: "orders" the busy task (3 in 5 runs), four statuses mixed."""
    runs = []
    for n in range(1, RUNS + 1):
        task_id = "orders" if n % 5 < 3 else TASKS[1 + n % 2]
        run = make_run(n, task_id=task_id, status=STATUSES[(n * 7) % 4])
        store.create_run(run)
        runs.append(run)
    return runs


def all_pages(
    store: RunStore, limit: int, task_id: str | None = None, status: RunStatus | None = None
) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page = store.list_runs(task_id=task_id, status=status, limit=limit, cursor=cursor)
        pages.append([number(run) for run in page.runs])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_the_runs_of_these_tests_fall_in_every_shard() -> None:
    shards = [shard_of(f"run_{n:06d}", SHARDS) for n in range(1, RUNS + 1)]

    assert sorted(set(shards)) == list(range(SHARDS))
    assert max(shards.count(shard) for shard in range(SHARDS)) < RUNS / 2


def test_the_shard_of_a_run_is_its_sha256_and_never_pythons_hash() -> None:
    # sha256("run_000001") starts with e8b95910: the same in every process and version.
    assert shard_of("run_000001", 1 << 32) == 0xE8B95910
    assert shard_of("run_000001", 64) == 0xE8B95910 % 64 == 16
    assert {shard_of(f"r{n}", 64) for n in range(2000)} == set(range(64))


@pytest.mark.parametrize(
    ("task_id", "status"),
    [
        (None, None),
        ("orders", None),
        ("emails", None),
        (None, RunStatus.WAITING),
        ("orders", RunStatus.COMPLETED),
        ("refunds", RunStatus.FAILED),
        ("nobody", None),
    ],
)
@pytest.mark.parametrize("limit", [7, 40, 500])
def test_a_sharded_listing_pages_through_every_run_once_newest_first(
    sharded_store: RunStore, task_id: str | None, status: RunStatus | None, limit: int
) -> None:
    runs = populate(sharded_store)
    expected = sorted(
        (
            number(run)
            for run in runs
            if (task_id is None or run.task_id == task_id)
            and (status is None or run.status == status)
        ),
        reverse=True,
    )

    pages = all_pages(sharded_store, limit, task_id, status)

    assert [n for page in pages for n in page] == expected
    assert all(len(page) == limit for page in pages[:-1])  # only the last page is short
    assert len(pages) == max(1, -(-len(expected) // limit))


def test_a_cursor_stays_where_it_was_while_newer_runs_arrive(sharded_store: RunStore) -> None:
    populate(sharded_store)
    first = sharded_store.list_runs(limit=10)

    for n in range(RUNS + 1, RUNS + 21):  # newer than every run listed: in every shard
        sharded_store.create_run(make_run(n))
    rest = all_pages(sharded_store, 25) if first.next_cursor is None else []
    cursor = first.next_cursor
    while cursor is not None:
        page = sharded_store.list_runs(limit=25, cursor=cursor)
        rest.append([number(run) for run in page.runs])
        cursor = page.next_cursor

    assert [number(run) for run in first.runs] == list(range(RUNS, RUNS - 10, -1))
    assert [n for page in rest for n in page] == list(range(RUNS - 10, 0, -1))
    assert [number(run) for run in sharded_store.list_runs(limit=3).runs] == [110, 109, 108]


def test_a_listing_sees_status_changes_in_every_shard(sharded_store: RunStore) -> None:
    runs = populate(sharded_store)
    waiting = [run for run in runs if run.status is RunStatus.WAITING]
    for run in waiting[::2]:
        sharded_store.update_run(run.run_id, {"status": RunStatus.COMPLETED})
    still_waiting = sorted((number(run) for run in waiting[1::2]), reverse=True)

    pages = all_pages(sharded_store, 4, status=RunStatus.WAITING)

    assert [n for page in pages for n in page] == still_waiting


# -- cursors (the DynamoDB store's own format) -------------------------------------------


@pytest.fixture
def moto_store(sharded_store: RunStore) -> DynamoDBRunStore:
    """The sharded store of the tests parametrized with the moto backend alone."""
    assert isinstance(sharded_store, DynamoDBRunStore)
    return sharded_store


@pytest.mark.parametrize("backend", ["moto"])
def test_the_table_says_how_many_shards_it_has(moto_store: DynamoDBRunStore) -> None:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=TABLE, Key={"pk": {"S": "TABLE#CONFIG"}, "sk": {"S": "CONFIG"}}
    )["Item"]

    assert item["index_shards"] == {"N": str(SHARDS)}
    assert item["layout"] == {"N": "2"}
    assert moto_store.index_shards == SHARDS


@pytest.mark.parametrize("backend", ["moto"])
@pytest.mark.parametrize(
    "cursor",
    ["not a cursor", "e30", "eyJ2IjoxfQ", "!!!", "x" * 4000],  # e30 is "{}", eyJ2IjoxfQ {"v":1}
)
def test_an_invalid_cursor_is_an_input_error(moto_store: DynamoDBRunStore, cursor: str) -> None:
    with pytest.raises(InputError):
        moto_store.list_runs(cursor=cursor)


@pytest.mark.parametrize("backend", ["moto"])
def test_a_cursor_of_another_listing_is_an_input_error(moto_store: DynamoDBRunStore) -> None:
    populate(moto_store)
    cursor = moto_store.list_runs(task_id="orders", limit=5).next_cursor
    assert cursor is not None

    with pytest.raises(InputError, match="another listing"):
        moto_store.list_runs(task_id="refunds", limit=5, cursor=cursor)
    with pytest.raises(InputError, match="another listing"):
        moto_store.list_runs(status=RunStatus.QUEUED, limit=5, cursor=cursor)
    assert len(moto_store.list_runs(task_id="orders", limit=5, cursor=cursor).runs) == 5


# -- due and expired runs, the sweeper, the purge ----------------------------------------


def make_due(store: RunStore, count: int) -> list[RunRecord]:
    """`count` waiting runs, three to a wake-up instant (ties broken by run id), and five
    more due only in a day."""
    runs = []
    for n in range(1, count + 6):
        wake_at = T0 + (n // 3) * MINUTE if n <= count else T0 + timedelta(days=1)
        run = make_run(n, status=RunStatus.WAITING, wake_at=wake_at)
        store.create_run(run)
        runs.append(run)
    return runs[:count]


def test_due_runs_pages_through_every_shard_oldest_first(sharded_store: RunStore) -> None:
    due = make_due(sharded_store, 40)
    expected = [number(run) for run in sorted(due, key=lambda run: (run.wake_at, run.run_id))]

    pages: list[list[int]] = []
    after = None
    while page := sharded_store.due_runs(T0 + timedelta(hours=1), limit=6, after=after):
        pages.append([number(run) for run in page])
        after = page[-1]

    assert [n for page in pages for n in page] == expected
    assert [len(page) for page in pages] == [6] * 6 + [4]


def test_expired_runs_are_found_in_every_shard_oldest_first(sharded_store: RunStore) -> None:
    for n in range(1, 31):
        sharded_store.create_run(
            make_run(
                n,
                status=RunStatus.COMPLETED,
                finished_at=T0,
                expires_at=T0 + ((31 - n) // 2) * MINUTE,  # newest runs expire first
            )
        )
    expected = sorted(range(1, 31), key=lambda n: ((31 - n) // 2, n))

    assert [number(run) for run in sharded_store.expired_runs(T0 + MINUTE * 60, 1000)] == expected
    assert [number(run) for run in sharded_store.expired_runs(T0 + MINUTE * 60, 7)] == expected[:7]
    assert sharded_store.expired_runs(T0 - MINUTE, 1000) == []


def drain(queue: MemoryWakeQueue, clock: VirtualClock) -> list[WakeUp]:
    messages = []
    while (message := queue.pop_due(clock.now())) is not None:
        messages.append(message)
    return messages


def test_the_sweeper_finds_overdue_runs_in_every_shard(sharded_store: RunStore) -> None:
    due = make_due(sharded_store, 40)
    clock = VirtualClock(T0 + timedelta(hours=1))
    queue = MemoryWakeQueue(clock)

    sent = sweep(sharded_store, queue, clock, page_size=7)

    assert sent == 40
    assert sorted(message.run_id for message in drain(queue, clock)) == sorted(
        run.run_id for run in due
    )


def test_the_retention_purge_empties_every_shard(sharded_store: RunStore) -> None:
    for n in range(1, 31):
        sharded_store.create_run(
            make_run(n, status=RunStatus.FAILED, finished_at=T0, expires_at=T0 + n * MINUTE)
        )
    clock = VirtualClock(T0 + timedelta(days=1))

    assert purge_expired(sharded_store, clock, limit=1000) == 30
    assert sharded_store.list_runs(limit=100).runs == []
    assert sharded_store.expired_runs(clock.now(), 1000) == []


# -- leases: heartbeats write no index; the sweeper follows a live lease -----------------


def renew(store: RunStore, run_id: str, owner: str, expires: timedelta) -> RunRecord:
    """A heartbeat as the worker makes it (`durable.worker`): the lease alone."""
    return store.update_run(
        run_id,
        {"lease_expires": T0 + expires},
        expect_owner=owner,
        expect_status=(RunStatus.RUNNING,),
        expect_wake_by=T0 + expires,
    )


def test_a_heartbeat_renews_the_lease_and_leaves_the_wake_up(sharded_store: RunStore) -> None:
    sharded_store.create_run(make_run(1))
    sharded_store.acquire_lease("run_000001", "worker-a", T0, T0 + 15 * MINUTE)

    run = renew(sharded_store, "run_000001", "worker-a", 45 * MINUTE)

    assert run.lease_expires == T0 + 45 * MINUTE
    assert run.wake_at == T0 + 15 * MINUTE  # the lease's first expiry, earlier: still safe
    with pytest.raises(ConflictError):  # shorter than wake_at: the worker moves both then
        renew(sharded_store, "run_000001", "worker-a", 5 * MINUTE)
    with pytest.raises(ConflictError):
        renew(sharded_store, "run_000001", "worker-b", 50 * MINUTE)


def test_update_run_can_require_a_lease_that_lasts(sharded_store: RunStore) -> None:
    sharded_store.create_run(make_run(1))
    sharded_store.acquire_lease("run_000001", "worker-a", T0, T0 + 15 * MINUTE)

    with pytest.raises(ConflictError):
        sharded_store.update_run(
            "run_000001", {"wake_at": T0 + 16 * MINUTE}, expect_lease_until=T0 + 16 * MINUTE
        )
    run = sharded_store.update_run(
        "run_000001", {"wake_at": T0 + 15 * MINUTE}, expect_lease_until=T0 + 15 * MINUTE
    )
    assert run.wake_at == T0 + 15 * MINUTE


def test_the_sweeper_moves_a_live_lease_on_instead_of_sending_it(sharded_store: RunStore) -> None:
    sharded_store.create_run(make_run(1))
    sharded_store.acquire_lease("run_000001", "worker-a", T0, T0 + 15 * MINUTE)
    renew(sharded_store, "run_000001", "worker-a", 45 * MINUTE)
    clock = VirtualClock(T0 + 20 * MINUTE)
    queue = MemoryWakeQueue(clock)

    assert sweep(sharded_store, queue, clock) == 0  # alive: its wake-up follows the lease
    run = sharded_store.get_run("run_000001")
    assert run is not None
    assert run.wake_at == T0 + 45 * MINUTE
    assert run.lease_owner == "worker-a"
    assert sweep(sharded_store, queue, clock) == 0
    assert sharded_store.due_runs(clock.now()) == []

    clock.advance(30 * MINUTE)  # the invocation died: the lease ran out 5 minutes ago
    assert sweep(sharded_store, queue, clock) == 1
    assert [message.run_id for message in drain(queue, clock)] == ["run_000001"]


# -- runs that change between the index read and the item read (DynamoDB store) -----------


@pytest.mark.parametrize("backend", ["moto"])
def test_runs_gone_since_their_index_entry_are_skipped_and_the_page_filled(
    moto_store: DynamoDBRunStore,
) -> None:
    populate(moto_store)
    vanished = {f"run_{n:06d}" for n in range(RUNS, 0, -1) if n % 4 == 0}  # deleted meanwhile
    read_runs = moto_store._runs_in_order
    reader = IndexReader(
        moto_store._models.run,
        SHARDS,
        None,
        lambda run_ids: [run for run in read_runs(run_ids) if run.run_id not in vanished],
    )

    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        page = reader.list_runs(None, None, 10, cursor)
        pages.append([number(run) for run in page.runs])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    expected = [n for n in range(RUNS, 0, -1) if n % 4]
    assert [n for page in pages for n in page] == expected
    assert all(len(page) == 10 for page in pages[:-1])


def raw_run_item(run_id: str) -> dict[str, object]:
    client = boto3.client("dynamodb", region_name=REGION)
    key = {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}
    return dict(client.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"])


def indexed_attributes() -> set[str]:
    """What any index of the table holds of an item: its keys and projected attributes."""
    table = boto3.client("dynamodb", region_name=REGION).describe_table(TableName=TABLE)["Table"]
    held = {key["AttributeName"] for key in table["KeySchema"]}
    for index in table["GlobalSecondaryIndexes"]:
        held |= {key["AttributeName"] for key in index["KeySchema"]}
        held |= set(index["Projection"].get("NonKeyAttributes", []))
    return held


@pytest.mark.parametrize("backend", ["moto"])
def test_a_lease_renewal_changes_nothing_an_index_holds(moto_store: DynamoDBRunStore) -> None:
    moto_store.create_run(make_run(1, wake_at=T0))
    moto_store.acquire_lease("run_000001", "worker-a", T0, T0 + 15 * MINUTE)
    held = indexed_attributes()
    before = raw_run_item("run_000001")

    for minutes in (20, 25, 30):
        renew(moto_store, "run_000001", "worker-a", minutes * MINUTE)
    after = raw_run_item("run_000001")

    assert {name: before.get(name) for name in held} == {name: after.get(name) for name in held}
    assert before["lease_expires"] != after["lease_expires"]
    assert {"updated_at", "lease_owner", "lease_expires", "payload"}.isdisjoint(held)
