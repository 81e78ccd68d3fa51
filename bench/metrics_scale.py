"""How long `GET /metrics` and `Client.stats()` take with 100,000 runs' worth of counters.

Run:  .venv/bin/python bench/metrics_scale.py [--runs 100000] [--sample 200] [--run-items N]

On the test kit's moto backend (in process, virtual clock, 2 index shards):

1. a sample of real runs (`--sample`, spread over 10 tasks: runs that complete, runs that
   fail after step and task retries, runs cancelled, runs left waiting) goes through the
   real write paths (trigger, worker, cancel), so their counters are written as in
   production;
2. the rest of `--runs` is added with the store's counter method (`add_stats`) directly,
   one call per task, bucket and shard with the amounts of all its runs, spread over the
   last 80 minutes (what the worker would have written run by run: the same items, since
   a counter item holds a sum; only the number of writes differs, which costs the writer,
   not the reader);
3. with `--run-items N`, N finished run items are also written into the table (batch
   writes), so the status index holds them: on AWS a query by key never reads them; moto
   reads its whole table for every index query, so this measures moto's worst case.

Then `GET /metrics` (through the API's resolver, `durable.api.handle`) and `Client.stats()`
are each timed 20 times; the figures printed are the median and the slowest, and the AWS
requests one call makes (counted at botocore); then `GET /metrics` again on moto with the
patches `durable dev` applies to its moto server (`durable.local.moto_patches`). Moto's
own serializer costs most of a request's time per attribute value it writes, which these
patches remove. Last, the sizes of the counter items (one per task, shard and ring slot:
one bucket's counters and the slot's share of the totals), which set what each counter
write costs (DynamoDB bills an `UpdateItem` 1 write unit per KB of the larger of the item
before and after it, and a counter write touches one item): those filled here (the
typical: their median; and the largest), and the largest one can be (every counter and
every bin of the histogram in one bucket, 10-digit and 38-digit amounts). Nothing here
asserts.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import botocore.client
from dynamodb_items import item_size, write_units

from durable import Context, RetryPolicy, TaskRegistry, task
from durable.api import handle
from durable.local import moto_patches
from durable.records import RunRecord, RunStatus
from durable.services.stats import BUCKET, bucket_of, duration_bin
from durable.storage import _tables
from durable.storage.base import STATS_BUCKETS, STATS_SHARDS
from durable.storage.dynamodb import DynamoDBRunStore
from durable.testing import TestEnvironment

TASKS = [f"task-{n:02d}" for n in range(10)]
STEP_RETRY = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=1), factor=1.0)


def registry() -> TaskRegistry:
    tasks = TaskRegistry()
    for task_id in TASKS:

        @task(id=task_id, registry=tasks, retry=RetryPolicy(max_attempts=2))
        def work(ctx: Context, kind: str) -> str:
            ctx.sleep("work", timedelta(seconds=random.uniform(1, 120)))
            if kind == "fail":

                def broken() -> None:
                    raise ConnectionError("down")

                ctx.step("call", broken, retry=STEP_RETRY)
            if kind == "wait":
                ctx.wait_for_event("go")
            return kind

    return tasks


@contextmanager
def counting_requests() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation: str, params: Any) -> Any:
        counts[operation] += 1
        return original(client, operation, params)

    botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


def run_sample(env: TestEnvironment, sample: int) -> Counter[str]:
    """Real runs through the real paths; how many of each kind."""
    kinds = ["complete"] * 6 + ["fail"] * 2 + ["cancel", "wait"]
    started: Counter[str] = Counter()
    for n in range(sample):
        kind = kinds[n % len(kinds)]
        handle_ = env.trigger(TASKS[n % len(TASKS)], "wait" if kind == "cancel" else kind)
        started[kind] += 1
        if kind == "cancel":
            env.run_until_idle()
            env.cancel(handle_.run_id)
        elif kind != "wait":
            env.run_until_complete(handle_.run_id)
    env.run_until_idle()
    return started


def add_the_rest(env: TestEnvironment, runs: int) -> int:
    """`runs` runs' counters through `add_stats`, summed per task, bucket and shard."""
    now = env.now()
    buckets = [bucket_of(now - BUCKET * back) for back in range(STATS_BUCKETS)]
    per_cell = runs // (len(TASKS) * len(buckets) * STATS_SHARDS)
    calls = 0
    for task_id in TASKS:
        for bucket in buckets:
            for shard in range(STATS_SHARDS):
                completed = per_cell * 8 // 10
                failed = per_cell - completed
                histogram = Counter(
                    f"h{duration_bin(random.lognormvariate(1.5, 1.0))}" for _ in range(completed)
                )
                window = {
                    "started": per_cell,
                    "completed": completed,
                    "failed": failed,
                    "step_retries": per_cell // 5,
                    "attempt_retries": per_cell // 20,
                    **histogram,
                }
                totals = {"created": per_cell, "completed": completed, "failed": failed}
                # a shard key that lands in `shard`: the store hashes the run id
                env.store.add_stats(task_id, bucket, window, totals, _key_in_shard(shard))
                calls += 1
    return per_cell * len(TASKS) * len(buckets) * STATS_SHARDS


_SHARD_KEYS: dict[int, str] = {}


def _key_in_shard(shard: int) -> str:
    from durable.storage._shards import shard_of

    n = 0
    while shard not in _SHARD_KEYS:
        key = f"run_bench_{n}"
        _SHARD_KEYS.setdefault(shard_of(key, STATS_SHARDS), key)
        n += 1
    return _SHARD_KEYS[shard]


def write_run_items(env: TestEnvironment, count: int) -> None:
    """`count` finished run items, in batches (the status index holds them all)."""
    store = env.store
    assert isinstance(store, DynamoDBRunStore)
    now = env.now()
    model = store._models.run
    with model.batch_write() as batch:
        for n in range(count):
            run = RunRecord(
                run_id=f"run_filler_{n:08d}",
                task_id=TASKS[n % len(TASKS)],
                status=RunStatus.COMPLETED,
                payload="null",
                created_at=now - timedelta(hours=2),
                updated_at=now - timedelta(hours=2),
                finished_at=now - timedelta(hours=2),
            )
            batch.save(store._run_item(run))


def counter_item_sizes(env: TestEnvironment) -> list[int]:
    """The size of every counter item in the table (read back from moto, by key)."""
    store = env.store
    assert isinstance(store, DynamoDBRunStore)
    sizes = []
    for task_id in TASKS:
        for shard in range(STATS_SHARDS):
            for slot in range(STATS_BUCKETS):
                key = {
                    "pk": {"S": _tables.stats_pk(task_id, shard)},
                    "sk": {"S": _tables.stats_slot_sk(slot)},
                }
                response = store._models.connection.dispatch(
                    "GetItem", {"TableName": store.table_name, "Key": key}
                )
                if "Item" in response:
                    sizes.append(item_size(response["Item"]))
    return sizes


def largest_counter_item(digits: int) -> int:
    """The size of a counter item holding every counter `durable.services.stats` writes in
    its bucket and every total, each amount `digits` digits long, and a task id of 64
    characters."""
    amount = {"N": "9" * digits}
    names = ["started", "completed", "failed", "cancelled", "timed_out", "step_retries"]
    names += ["attempt_retries", *(f"h{index}" for index in range(_histogram_bins()))]
    item: dict[str, Any] = {
        "pk": {"S": _tables.stats_pk("t" * 64, STATS_SHARDS - 1)},
        "sk": {"S": _tables.stats_slot_sk(STATS_BUCKETS - 1)},
        _tables.STATS_PERIOD: {"N": "9" * 9},
    }
    for name in ("created", "completed", "failed", "cancelled", "timed_out"):
        item[_tables.STATS_TOTAL_PREFIX + name] = amount
    for name in names:
        item[_tables.STATS_BUCKET_PREFIX + name] = amount
    return item_size(item)


def _histogram_bins() -> int:
    return duration_bin(1e12) + 1  # the last bin holds everything above


def timed(call: Callable[[], Any], times: int = 20) -> tuple[float, float, Counter[str]]:
    call()  # warm: the store's first read of its table's config
    durations = []
    with counting_requests() as requests:
        call()
    for _ in range(times):
        start = time.perf_counter()
        call()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations), max(durations), requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--run-items", type=int, default=0)
    args = parser.parse_args()
    random.seed(1)
    with TestEnvironment(backend="moto", registry=registry()) as env:
        began = time.perf_counter()
        kinds = run_sample(env, args.sample)
        sampled = time.perf_counter() - began
        rest = add_the_rest(env, args.runs - args.sample)
        if args.run_items:
            write_run_items(env, args.run_items)
        filled = time.perf_counter() - began

        def get_metrics() -> dict[str, Any]:
            event = {
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": "/metrics",
                "rawQueryString": "",
                "headers": {"host": "bench"},
                "requestContext": {
                    "http": {"method": "GET", "path": "/metrics", "sourceIp": "127.0.0.1"},
                    "stage": "$default",
                },
                "isBase64Encoded": False,
            }
            response = handle(event, None, env.client)
            assert response["statusCode"] == 200, response
            return dict(json.loads(response["body"]))

        api_median, api_max, api_requests = timed(get_metrics)
        client_median, client_max, client_requests = timed(env.client.stats)
        figures = get_metrics()
        sizes = counter_item_sizes(env)
        # The same moto as `durable dev` serves it: with its patches (`durable.local.
        # moto_patches`: answers serialized without moto's generic serializer, a base-table
        # query reading one partition...), which moto's own costs per value dominate.
        moto_patches.apply()
        try:
            dev_median, dev_max, _ = timed(get_metrics)
        finally:
            moto_patches.revert()
    started = sum(task["last_hour"]["started"] for task in figures["tasks"])
    total = sum(figures["totals"]["by_status"].values())
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(
        f"filled: {args.sample} real runs ({dict(kinds)}) in {sampled:.1f}s, "
        f"{rest:,} more through add_stats, {args.run_items:,} run items; {filled:.1f}s in all"
    )
    print(f"figures: {total:,} runs by status, {started:,} started in the last hour, tasks:")
    print(f"  {len(figures['tasks'])}; totals {figures['totals']['by_status']}")
    print(
        f"GET /metrics     median {api_median * 1000:7.1f} ms  max {api_max * 1000:7.1f} ms  "
        f"requests {dict(api_requests)}"
    )
    print(
        f"GET /metrics, durable dev's moto  median {dev_median * 1000:7.1f} ms  "
        f"max {dev_max * 1000:7.1f} ms"
    )
    print(
        f"Client.stats()   median {client_median * 1000:7.1f} ms  max {client_max * 1000:7.1f} ms"
        f"  requests {dict(client_requests)}"
    )
    typical = round(statistics.median(sizes))
    worst = [largest_counter_item(digits) for digits in (10, 38)]
    print(
        f"counter items: {len(sizes)} (tasks x shards x slots), {min(sizes):,} to "
        f"{max(sizes):,} bytes; typical (median) {typical:,} bytes = "
        f"{write_units(typical):.0f} write unit(s) a write, largest filled "
        f"{write_units(max(sizes)):.0f}"
    )
    print(
        f"largest possible item (every counter and bin of a bucket): {worst[0]:,} bytes = "
        f"{write_units(worst[0]):.0f} write unit(s) with 10-digit amounts, {worst[1]:,} bytes = "
        f"{write_units(worst[1]):.0f} with 38-digit ones"
    )


if __name__ == "__main__":
    main()
