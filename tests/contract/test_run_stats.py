"""RunStore contract, counters (`RunStats`): buckets in a ring and lifetime totals, one
record per task, shard and ring slot holding the slot's bucket and its share of the totals
(one write an add, one more at a slot's rollover, which clears that slot's bucket only;
races between two writers on a rollover), the tasks that have counters, active runs from
the status index. Every test runs on memory and moto; the last one reads moto's items."""

from __future__ import annotations

from typing import Any

from moto import mock_aws
from tests.contract.conftest import REGION, TABLE
from tests.contract.test_retention import finish
from tests.contract.test_run_store import make_run

from durable.records import RunStatus
from durable.storage import _tables
from durable.storage._shards import shard_of
from durable.storage._tables import create_table
from durable.storage.base import STATS_BUCKETS, STATS_SHARDS, RunStore, SlotHeld
from durable.storage.dynamodb import DynamoDBRunStore


def test_adds_are_summed_per_task_over_the_buckets_asked_for(store: RunStore) -> None:
    # given counters of two tasks, over several runs (so several shards) and buckets
    for n in range(12):
        store.add_stats("orders", 100 + n % 3, {"started": 1}, {"created": 1}, f"run_{n}")
    store.add_stats("orders", 102, {"completed": 2, "h40": 1}, {"completed": 2}, "run_x")
    store.add_stats("mail", 102, {"started": 1}, {"created": 1}, "run_y")

    # when they are read from bucket 101 on
    orders, mail, idle = store.read_stats(["orders", "mail", "idle"], since_bucket=101)

    # then bucket 100 is left out of the window, never out of the totals
    assert orders.task_id == "orders"
    assert orders.window == {"started": 8, "completed": 2, "h40": 1}
    assert orders.totals == {"created": 12, "completed": 2}
    assert mail.window == {"started": 1} and mail.totals == {"created": 1}
    assert idle.window == {} and idle.totals == {}
    assert store.stats_task_ids() == {"orders", "mail"}


def test_the_ring_keeps_the_last_buckets_and_drops_older_adds(store: RunStore) -> None:
    store.add_stats("orders", 5, {"started": 3}, {}, "run_1")
    # A bucket STATS_BUCKETS later takes the same slot: the old counts are replaced.
    store.add_stats("orders", 5 + STATS_BUCKETS, {"started": 1}, {}, "run_1")
    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert counts.window == {"started": 1}

    # An add to the bucket it replaced is too old to keep: dropped, nothing else changes.
    store.add_stats("orders", 5, {"started": 7}, {"created": 1}, "run_1")
    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert counts.window == {"started": 1}
    assert counts.totals == {"created": 1}


def test_a_task_with_a_hash_in_its_name_keeps_its_own_counters(store: RunStore) -> None:
    store.add_stats("a#1", 1, {"started": 1}, {"created": 1}, "run_1")
    store.add_stats("a", 1, {"started": 5}, {"created": 5}, "run_1")
    first, second = store.read_stats(["a#1", "a"], since_bucket=0)
    assert first.totals == {"created": 1} and second.totals == {"created": 5}
    assert store.stats_task_ids() == {"a#1", "a"}


def test_active_runs_are_counted_per_task_and_status(store: RunStore) -> None:
    for n in range(1, 4):
        store.create_run(make_run(n, task_id="orders"))
    store.create_run(make_run(4, task_id="mail"))
    store.create_run(make_run(5, task_id="mail", status=RunStatus.WAITING))
    finish(store, 6, task_id="orders")  # ended: not active

    active = store.count_active([RunStatus.QUEUED, RunStatus.WAITING, RunStatus.RUNNING], cap=100)

    assert active.counts == {
        "orders": {RunStatus.QUEUED: 3},
        "mail": {RunStatus.QUEUED: 1, RunStatus.WAITING: 1},
    }
    assert active.capped == frozenset()


def test_active_counts_on_a_sharded_table_stop_at_the_cap(sharded_store: RunStore) -> None:
    for n in range(1, 30):
        sharded_store.create_run(make_run(n))

    active = sharded_store.count_active([RunStatus.QUEUED], cap=8)

    assert 2 <= active.counts["orders"][RunStatus.QUEUED] <= 8
    assert active.capped == frozenset({RunStatus.QUEUED})
    uncapped = sharded_store.count_active([RunStatus.QUEUED], cap=100)
    assert uncapped.counts["orders"][RunStatus.QUEUED] == 29
    assert uncapped.capped == frozenset()


def test_a_read_up_to_a_bucket_leaves_later_ones_out(store: RunStore) -> None:
    for bucket in range(100, 110):
        store.add_stats("orders", bucket, {"started": 1}, {"created": 1}, f"run_{bucket}")

    [counts] = store.read_stats(["orders"], since_bucket=102, until_bucket=104)

    assert counts.window == {"started": 3}
    assert counts.totals == {"created": 10}


def test_an_add_is_one_write_and_a_rollover_one_more(store: RunStore) -> None:
    store.add_stats("orders", 5, {"started": 1}, {"created": 1}, "run_1")  # records the task
    before = store.writes  # type: ignore[attr-defined]

    store.add_stats("orders", 5, {"completed": 1, "h40": 1}, {"completed": 1}, "run_1")
    added = store.writes - before  # type: ignore[attr-defined]
    store.add_stats("orders", 5 + STATS_BUCKETS, {"started": 1}, {"created": 1}, "run_1")
    rolled = store.writes - before - added  # type: ignore[attr-defined]

    # window and totals are one record: one write each, the rollover's failed add is the other
    assert (added, rolled) == (1, 1)


def test_a_rollover_replaces_the_slots_counters_and_keeps_the_totals(store: RunStore) -> None:
    # given a bucket with a duration histogram, in slot 5
    store.add_stats("orders", 5, {"completed": 3, "h40": 2, "h41": 1}, {"completed": 3}, "run_1")
    store.add_stats("orders", 6, {"started": 2}, {"created": 2}, "run_1")

    # when a bucket one ring later lands in the same slot, with other counters
    store.add_stats("orders", 5 + STATS_BUCKETS, {"failed": 1, "h41": 1}, {"failed": 1}, "run_1")

    # then the slot holds only the new bucket's counters (no old bin left over), the other
    # slot is untouched, and the totals hold everything
    [new] = store.read_stats(["orders"], since_bucket=5 + STATS_BUCKETS)
    assert new.window == {"failed": 1, "h41": 1}
    [ring] = store.read_stats(["orders"], since_bucket=0)
    assert ring.window == {"started": 2, "failed": 1, "h41": 1}
    assert ring.totals == {"completed": 3, "created": 2, "failed": 1}


def test_the_totals_survive_every_rollover(store: RunStore) -> None:
    # three turns of the ring, on every shard
    for bucket in range(3 * STATS_BUCKETS):
        for n in range(4):
            store.add_stats(
                "orders", bucket, {"started": 1, "h3": 1}, {"created": 1}, f"run_{bucket}_{n}"
            )

    [counts] = store.read_stats(["orders"], since_bucket=2 * STATS_BUCKETS)

    assert counts.totals == {"created": 3 * STATS_BUCKETS * 4}
    assert counts.window == {"started": STATS_BUCKETS * 4, "h3": STATS_BUCKETS * 4}


def test_two_writers_racing_on_a_rollover_both_count(store: RunStore) -> None:
    steps: Any = store  # the adapters' two steps of an add (`SlotHeld`), run in a racing order
    shard = shard_of("run_1", STATS_SHARDS)
    store.add_stats("orders", 5, {"started": 9, "h7": 9}, {"created": 9}, "run_1")
    new = 5 + STATS_BUCKETS

    # both writers' guarded adds fail on the old bucket, and see what it held
    held_a = steps._stats_try_add("orders", shard, new, {"started": 1}, {"created": 1})
    held_b = steps._stats_try_add("orders", shard, new, {"completed": 1}, {"completed": 1})
    assert held_a == held_b == SlotHeld(period=5, names=frozenset({"started", "h7"}))
    # A rolls the slot over first; B's rollover is refused, not applied over A's
    assert steps._stats_roll("orders", shard, new, held_a, {"started": 1}, {"created": 1})
    assert not steps._stats_roll("orders", shard, new, held_b, {"completed": 1}, {"completed": 1})
    # and B's add, tried again, lands in the new bucket
    assert steps._stats_try_add("orders", shard, new, {"completed": 1}, {"completed": 1}) is None

    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert counts.window == {"started": 1, "completed": 1}
    assert counts.totals == {"created": 10, "completed": 1}


def test_a_writer_losing_a_rollover_race_adds_to_the_new_bucket(store: RunStore) -> None:
    # the whole add_stats of another writer runs between this one's failed add and its rollover
    steps: Any = store
    store.add_stats("orders", 5, {"started": 9}, {"created": 9}, "run_1")
    new = 5 + STATS_BUCKETS
    roll = steps._stats_roll
    raced: list[bool] = []

    def racing_roll(*args: Any) -> bool:
        if not raced:
            raced.append(True)
            store.add_stats("orders", new, {"started": 1, "h2": 1}, {"created": 1}, "run_1")
        return bool(roll(*args))

    steps._stats_roll = racing_roll
    store.add_stats("orders", new, {"started": 1, "h3": 1}, {"created": 1}, "run_1")

    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert raced
    assert counts.window == {"started": 2, "h2": 1, "h3": 1}
    assert counts.totals == {"created": 11}


def test_an_add_to_a_bucket_gone_from_the_ring_still_counts_its_totals(store: RunStore) -> None:
    store.add_stats("orders", 5 + STATS_BUCKETS, {"started": 1}, {"created": 1}, "run_1")

    store.add_stats("orders", 5, {"completed": 1, "h9": 1}, {"completed": 1}, "run_1")

    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert counts.window == {"started": 1}
    assert counts.totals == {"created": 1, "completed": 1}

    # and the late totals stay through the slot's next rollover
    store.add_stats("orders", 5 + 2 * STATS_BUCKETS, {"started": 2}, {"created": 2}, "run_1")
    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert counts.window == {"started": 2}
    assert counts.totals == {"created": 3, "completed": 1}


def test_a_rollover_keeps_the_slots_share_of_the_totals_and_other_slots_buckets(
    store: RunStore,
) -> None:
    # given totals spread over three slots of one shard, and the two other slots' buckets
    for bucket in (5, 6, 7):
        store.add_stats("orders", bucket, {"started": bucket}, {"created": bucket}, "run_1")

    # when slot 5 turns over twice
    store.add_stats("orders", 5 + STATS_BUCKETS, {"failed": 1}, {"failed": 1}, "run_1")
    store.add_stats("orders", 5 + 2 * STATS_BUCKETS, {"completed": 1}, {"completed": 1}, "run_1")

    # then only slot 5's bucket was replaced; every slot's share of the totals is kept
    [counts] = store.read_stats(["orders"], since_bucket=0)
    assert counts.window == {"started": 13, "completed": 1}
    assert counts.totals == {"created": 18, "failed": 1, "completed": 1}


def test_on_dynamodb_an_add_writes_its_slots_item_only(aws_credentials: None) -> None:
    with mock_aws():
        create_table(TABLE, REGION)
        store = DynamoDBRunStore(TABLE, region=REGION)
        shard = shard_of("run_1", STATS_SHARDS)
        store.add_stats("orders", 5, {"started": 2, "h7": 2}, {"created": 2}, "run_1")
        store.add_stats("orders", 6, {"started": 1}, {"created": 1}, "run_1")
        store.add_stats("orders", 5 + STATS_BUCKETS, {"failed": 1}, {"failed": 1}, "run_1")

        def item(slot: int) -> dict[str, str]:
            key = {
                "pk": {"S": _tables.stats_pk("orders", shard)},
                "sk": {"S": _tables.stats_slot_sk(slot)},
            }
            found = store._models.connection.dispatch(
                "GetItem", {"TableName": TABLE, "Key": key}
            ).get("Item", {})
            return {
                name: next(iter(value.values()))
                for name, value in found.items()
                if name not in ("pk", "sk")
            }

        # slot 5's item holds the new bucket and both of its buckets' totals; slot 6 its own
        assert item(5) == {
            "p": str(5 + STATS_BUCKETS),
            "b_failed": "1",
            "t_created": "2",
            "t_failed": "1",
        }
        assert item(6) == {"p": "6", "b_started": "1", "t_created": "1"}
        assert all(item(slot) == {} for slot in range(STATS_BUCKETS) if slot not in (5, 6))
