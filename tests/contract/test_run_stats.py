"""RunStore contract, counters (`RunStats`): buckets in a ring, lifetime totals, the tasks
that have counters, active runs from the status index. Every test runs on memory and moto."""

from __future__ import annotations

from tests.contract.test_retention import finish
from tests.contract.test_run_store import make_run

from durable.records import RunStatus
from durable.storage.base import STATS_BUCKETS, RunStore


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
