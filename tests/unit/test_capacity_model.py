"""The capacity model's arithmetic and its simulator (bench/capacity_model.py), made-up traces."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bench.capacity_model import (
    Access,
    RunTrace,
    mix,
    partition_loads,
    quota_rate,
    shape_load,
    simulate,
    sustainable_rate,
)
from bench.dynamodb_items import TABLE, TableLayout, index_entry_writes


def writes_to(target: str, key: str, units: float = 1.0, at: float = 0.0) -> Access:
    return Access(target, key, units, 0.0, 1, at, "UpdateItem", shared=True)


def own_write(run_id: str, units: float = 1.0) -> Access:
    return Access(TABLE, f"RUN#{run_id}", units, 0.0, 1, 0.0, "PutItem", shared=False)


def trace(*accesses: Access, runs: int = 1) -> RunTrace:
    return RunTrace(runs=runs, accesses=list(accesses))


def test_shared_keys_add_up_across_runs_and_own_partitions_do_not() -> None:
    # given: each run writes 4 units to the constant key RUN of an index, 20 to its own item
    load = shape_load(
        "shape",
        [trace(writes_to("all-runs", "RUN", 4.0), own_write(f"r{i}", 20.0)) for i in range(3)],
    )

    # then: 1,000 write units/s on RUN at 250 runs/s; the run's own partition is never hot
    assert load.write_units == {("all-runs", "RUN"): 4.0}
    assert load.target_write_units == {"all-runs": 4.0, TABLE: 20.0}
    bottleneck = sustainable_rate(load)
    assert bottleneck.runs_per_second == pytest.approx(250.0)
    assert "all-runs key 'RUN'" in bottleneck.what
    (hottest,) = partition_loads(load, 1_000)
    assert hottest.share == pytest.approx(4.0)


def test_sharded_keys_spread_as_the_traces_did() -> None:
    # given: 8 runs, each on one of 8 shards
    load = shape_load("sharded", [trace(writes_to("all-runs", f"RUN#{i}", 4.0)) for i in range(8)])

    # then: each shard takes an eighth, so the sustainable rate is 8 times as high
    assert sustainable_rate(load).runs_per_second == pytest.approx(2_000.0)


def test_children_count_as_runs_and_a_mix_weighs_its_shapes() -> None:
    fan_out = shape_load("map", [trace(writes_to("due", "WAKE", 101.0), runs=101)])
    single = shape_load("one", [trace(writes_to("due", "WAKE", 3.0))])

    assert fan_out.write_units[("due", "WAKE")] == pytest.approx(1.0)  # per run, children too
    blended = mix("mix", [(fan_out, 0.5), (single, 0.5)])
    assert blended.write_units[("due", "WAKE")] == pytest.approx(2.0)


def test_the_table_quota_is_reported_apart_from_the_partition_limit() -> None:
    load = shape_load("own", [trace(own_write("r1", 10.0))])

    quota = quota_rate(load)

    assert quota.runs_per_second == pytest.approx(4_000.0)  # 40,000 WRU/s / 10
    assert "table quota" in quota.what
    assert math.isinf(sustainable_rate(load).runs_per_second)  # no shared key: no data limit


def test_the_table_shard_count_spreads_a_key_over_shards_no_run_visited() -> None:
    # given: 4 runs that happened to land on 4 of the table's 16 shards
    traces = [trace(writes_to("all-runs", f"RUN#{i}", 4.0)) for i in range(4)]

    seen_only = shape_load("seen", traces)
    whole_table = shape_load("table", traces, table_shards=16)

    # then: the load spreads over all 16, four times the rate of the 4 seen
    assert sustainable_rate(seen_only).runs_per_second == pytest.approx(1_000.0)
    assert sustainable_rate(whole_table).runs_per_second == pytest.approx(4_000.0)
    result = simulate([(traces, 1.0)], runs_per_second=3_000, seconds=5.0)
    assert result.total_throttles > 0  # over 4 keys: 3,000 a second each, throttled
    spread = simulate([(traces, 1.0)], runs_per_second=3_000, seconds=5.0, table_shards=16)
    assert spread.total_throttles == 0  # over 16: 750 each


def test_one_constant_key_at_2000_writes_a_second_throttles() -> None:
    one_key = [trace(writes_to("all-runs", "RUN", 1.0))]

    result = simulate([(one_key, 1.0)], runs_per_second=2_000, seconds=5.0)

    assert result.throttles[("all-runs", "RUN", "write")] > 0
    assert result.served_units[("all-runs", "RUN", "write")] <= 1_000.0 + 1e-6


def test_the_same_load_over_8_keys_does_not_throttle() -> None:
    eight_keys = [trace(writes_to("all-runs", f"RUN#{i}", 1.0)) for i in range(8)]

    result = simulate([(eight_keys, 1.0)], runs_per_second=2_000, seconds=5.0)

    assert result.total_throttles == 0
    assert sum(result.served_units.values()) == pytest.approx(2_000.0, rel=0.1)


def test_keys_that_name_the_run_are_not_simulated() -> None:
    own = [trace(own_write(f"r{i}", 5.0)) for i in range(4)]

    result = simulate([(own, 1.0)], runs_per_second=10_000, seconds=2.0)

    assert result.total_throttles == 0
    assert result.served_units == {}


def layout(projection: str, included: tuple[str, ...] = ()) -> TableLayout:
    return TableLayout.from_description(
        {
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "due",
                    "KeySchema": [
                        {"AttributeName": "wake_shard", "KeyType": "HASH"},
                        {"AttributeName": "wake_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": projection, "NonKeyAttributes": included},
                }
            ],
        }
    )


RUN_ITEM = {
    "pk": {"S": "RUN#run_1"},
    "sk": {"S": "RUN"},
    "wake_shard": {"S": "WAKE#3"},
    "wake_at": {"S": "2030-01-01T00:00:00"},
    "lease_owner": {"S": "a"},
    "status": {"S": "RUNNING"},
}


def index_writes(projection: str, before: Any, after: Any, included: tuple[str, ...] = ()) -> Any:
    (due,) = layout(projection, included).indexes
    return list(index_entry_writes(due, before, after))


def test_an_index_is_written_when_a_projected_attribute_changes() -> None:
    leased = {**RUN_ITEM, "lease_owner": {"S": "b"}}

    assert index_writes("ALL", RUN_ITEM, leased) == [("WAKE#3", 1.0, 1)]
    assert index_writes("KEYS_ONLY", RUN_ITEM, leased) == []
    assert index_writes("INCLUDE", RUN_ITEM, leased, ("status",)) == []
    assert index_writes("INCLUDE", RUN_ITEM, leased, ("lease_owner",)) == [("WAKE#3", 1.0, 1)]


def test_a_key_change_is_a_delete_and_a_put_and_leaving_is_a_delete() -> None:
    moved = {**RUN_ITEM, "wake_at": {"S": "2030-01-01T00:05:00"}}
    ended = {k: v for k, v in RUN_ITEM.items() if k not in ("wake_shard", "wake_at")}

    assert index_writes("KEYS_ONLY", RUN_ITEM, moved) == [("WAKE#3", 1.0, 1), ("WAKE#3", 1.0, 1)]
    assert index_writes("KEYS_ONLY", RUN_ITEM, ended) == [("WAKE#3", 1.0, 1)]
    assert index_writes("KEYS_ONLY", None, ended) == []


def test_a_sharded_key_is_spread_evenly_over_the_shards_seen() -> None:
    # given: 10 runs on 8 shards, unevenly (3 on RUN#0), and one constant key
    shards = [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    load = shape_load(
        "sharded",
        [trace(writes_to("all-runs", f"RUN#{k}", 8.0), writes_to("due", "WAKE")) for k in shards],
    )

    # then: each shard takes an eighth of the 8 units a run; the constant key is untouched
    assert load.write_units[("all-runs", "RUN#0")] == pytest.approx(1.0)
    assert load.write_units[("all-runs", "RUN#7")] == pytest.approx(1.0)
    assert load.write_units[("due", "WAKE")] == pytest.approx(1.0)
    assert load.shard_families[("all-runs", "RUN#")] == (8, pytest.approx(3.0 / 1.25))
    assert sustainable_rate(load).runs_per_second == pytest.approx(1_000.0)


def test_the_simulator_spreads_shards_too() -> None:
    uneven = [trace(writes_to("all-runs", f"RUN#{k}", 1.0)) for k in [0, 0, 0, 0, 1, 2, 3, 4]]

    # 5 shards seen: 4,000 writes/s are 800 a shard, under the limit, even though RUN#0
    # took half of the measured runs
    result = simulate([(uneven, 1.0)], runs_per_second=4_000, seconds=5.0)

    assert result.total_throttles == 0
