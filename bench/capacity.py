"""Capacity on AWS: per-partition load, Lambda concurrency and cost at 1,000 and 10,000 runs/s.

Run:  make bench-capacity        (or: .venv/bin/python -m bench.capacity [--scale 0.5])

1. Measure (bench/capacity_runs.py, bench/capacity_meter.py): three run shapes on moto in
   process; every AWS request counted, and every DynamoDB write's effect on the table and
   on each index *as DescribeTable describes them* (so the same command gives the figures
   of whatever layout the code creates), with the partition key value it lands on.
2. Model (bench/capacity_model.py): at a target load, the write and read rate on the busiest
   shared partition key of the table and of each index against DynamoDB's per-partition
   limits, the highest sustainable rate and its first bottleneck, SQS requests, Lambda
   concurrency (measured compute + an assumed latency per AWS request), cost per million
   runs and per month at the load, with the prices of bench/prices.py.
3. Simulate: the same loads through per-partition token buckets on a virtual clock, with
   the workers' retries: throttles per key.

Nothing here asserts; the figures are printed with the command that reproduces them.
"""

from __future__ import annotations

import argparse
import math
import platform
import subprocess
from pathlib import Path

from bench import prices
from bench.capacity_model import (
    READ_UNITS_PER_PARTITION,
    TABLE_QUOTA_UNITS,
    WRITE_UNITS_PER_PARTITION,
    Bottleneck,
    ShapeLoad,
    hottest_per_target,
    lambda_concurrency,
    mix,
    partition_loads,
    quota_rate,
    shape_load,
    simulate,
    sustainable_rate,
)
from bench.capacity_runs import DELAY_CAP, LEASE, MAP_ITEMS, RETENTION, SHAPES, measure
from bench.dynamodb_items import TABLE

from durable.services.purge import PURGE_THREADS
from durable.storage._tables import DEFAULT_SHARDS

COMMAND = "make bench-capacity   (or: .venv/bin/python -m bench.capacity)"
ROOT = Path(__file__).resolve().parents[1]
LOADS = (1_000, 10_000)  # runs a second (children of a map count as runs)
MIX = (("five-steps", 0.6), ("sleeps-and-retry", 0.3), (f"map-{MAP_ITEMS}", 0.1))
LATENCY = 0.005  # assumed seconds per DynamoDB/SQS/S3 request from Lambda, in region
# template.yaml defaults
LAMBDA_MEMORY_GB = 512 / 1024  # Globals.Function.MemorySize
BATCH_SIZE = 10  # WorkerBatchSize
TEMPLATE_MAX_CONCURRENCY = 10  # WorkerMaxConcurrency (its MaxValue, and AWS's, is 1,000)
ESM_MAX_CONCURRENCY = 1_000  # an SQS event source mapping's most concurrent batches
ACCOUNT_CONCURRENCY = 1_000  # Lambda's default concurrency quota per region (adjustable)
# The event source mapping receives a batch and deletes it: two requests per batch.
ESM_REQUESTS_PER_MESSAGE = 2 / BATCH_SIZE
# The retention purge runs in the workers (durable.services.purge): one purger per expiry shard at a
# time, each with PURGE_THREADS deletes in flight, so at most INDEX_SHARDS purgers (fewer
# when the workers' concurrency is lower), and a purger's Lambda time is its requests'
# time over its threads.
INDEX_SHARDS = DEFAULT_SHARDS
MONTH_SECONDS = 30 * 24 * 3600
SIMULATED_SECONDS = 10.0


def revision() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def rate(value: float) -> str:
    return "unbounded" if math.isinf(value) else f"{value:,.0f} runs/s"


# -- cost ----------------------------------------------------------------------------------


def cost_per_million_runs(load: ShapeLoad) -> dict[str, float]:
    """Dollars per million runs, by service (children of a map count as runs)."""
    write_units = sum(load.target_write_units.values())
    read_units = sum(load.target_read_units.values())
    sqs_requests = load.service_requests("sqs") + load.messages * ESM_REQUESTS_PER_MESSAGE
    s3_puts = sum(n for op, n in load.requests.items() if op in ("s3.PutObject",))
    s3_gets = load.service_requests("s3") - s3_puts
    gb_seconds = worker_seconds_with_purge(load) * LAMBDA_MEMORY_GB
    million = prices.MILLION
    return {
        "DynamoDB": million
        * (
            write_units * prices.DYNAMODB_WRITE_REQUEST_UNIT.usd
            + read_units * prices.DYNAMODB_READ_REQUEST_UNIT.usd
        ),
        "SQS": million * sqs_requests * prices.SQS_STANDARD_REQUEST.usd,
        "Lambda req": million * load.messages / BATCH_SIZE * prices.LAMBDA_REQUEST.usd,
        "Lambda GB-s": million * gb_seconds * prices.LAMBDA_GB_SECOND.usd,
        "S3": million * (s3_puts * prices.S3_PUT_REQUEST.usd + s3_gets * prices.S3_GET_REQUEST.usd),
    }


# -- the report ----------------------------------------------------------------------------


def print_header(layout_lines: list[str]) -> None:
    import moto

    print("durable: capacity model on AWS (issue 9)")
    print(f"reproduce: {COMMAND}")
    print(f"revision {revision()}; python {platform.python_version()}, moto {moto.__version__}")
    print("data model, read from DescribeTable:")
    for line in layout_lines:
        print(f"    {line}")
    print("prices (bench/prices.py):")
    for line in prices.price_lines():
        print(f"    {line}")
    print(
        f"assumed: {LATENCY * 1000:.0f} ms per AWS request from Lambda (modeled time = measured "
        "compute, moto's own time excluded, + that per request); worker "
        f"{LAMBDA_MEMORY_GB * 1024:.0f} MB x86_64, SQS batches of {BATCH_SIZE} (full at these "
        f"loads: {ESM_REQUESTS_PER_MESSAGE:.1f} receive/delete requests per message); "
        f"lease {LEASE.total_seconds():.0f} s, retention {RETENTION.days} days (template "
        "defaults); no API Gateway (runs triggered with the Python client)"
    )
    print(
        f"limits: {WRITE_UNITS_PER_PARTITION:,.0f} write units/s and "
        f"{READ_UNITS_PER_PARTITION:,.0f} read units/s per partition key value (table and "
        "each index; an index partition that cannot keep up throttles the table's writes); "
        f"{TABLE_QUOTA_UNITS:,.0f} units/s per table (on-demand default quota)"
    )
    print()


def print_measured(
    loads: dict[str, ShapeLoad], measured: dict[str, int], seconds: dict[str, float]
) -> None:
    print("(a) measured on moto in process, per run (a map's children are runs)")
    for name, load in loads.items():
        print(
            f"  {name}: {measured[name]} top-level runs of {load.runs_per_trace:.0f} run(s) "
            f"measured in {seconds[name]:.0f} s; {load.messages:.2f} worker invocations per run, "
            f"{load.worker_seconds_per_message * 1000:.1f} ms modeled per invocation"
        )
        ops = ", ".join(f"{op} {n:.2f}" for op, n in sorted(load.requests.items()))
        print(f"      requests per run: {ops}")
        writes = load.target_write_units
        index_names = sorted(t for t in writes if t != TABLE)
        index_items = sum(load.item_writes.get(t, 0.0) for t in index_names)
        index_units = sum(writes[t] for t in index_names)
        print(
            f"      write units per run: table {writes.get(TABLE, 0):.2f}, indexes "
            f"{index_units:.2f}, total {sum(writes.values()):.2f}; read units per run "
            f"{sum(load.target_read_units.values()):.2f}"
        )
        per_index = ", ".join(
            f"{t} {load.item_writes.get(t, 0):.2f} ({writes[t]:.2f} WCU)" for t in index_names
        )
        print(f"      index writes per run: {index_items:.2f} in all: {per_index}")
        for (target, family), (seen, skew) in sorted(load.shard_families.items()):
            print(
                f"      sharded key {target} {family}<k>: {seen} shards seen; the busiest took "
                f"{skew:.1f}x the mean (chance, over {measured[name]} runs): spread evenly here"
            )
        shared = sorted(load.write_units.items(), key=lambda kv: kv[1], reverse=True)[:6]
        keys = ", ".join(f"{t} {k!r} {u:.2f}" for (t, k), u in shared)
        print(f"      shared keys, write units per run: {keys}")
    print()


def worker_seconds_with_purge(load: ShapeLoad) -> float:
    """Worker Lambda seconds per run, its purge included (a purger overlaps its threads)."""
    return load.worker_seconds + load.sweeper_seconds / PURGE_THREADS


def purge_rate(load: ShapeLoad, concurrency: int) -> float:
    """Runs a second the workers purge: a purger per shard (as many as `concurrency` lets
    run at once), `PURGE_THREADS` deletes in flight each, one run's purge taking its
    requests' time (`sweeper_seconds`: the measured purge's requests x LATENCY)."""
    purgers = min(INDEX_SHARDS, concurrency)
    return purgers * PURGE_THREADS / (load.sweeper_seconds or math.inf)


def deployment_limits(load: ShapeLoad) -> list[Bottleneck]:
    seconds = worker_seconds_with_purge(load) or math.inf
    account = min(ESM_MAX_CONCURRENCY, ACCOUNT_CONCURRENCY)
    return [
        Bottleneck(
            TEMPLATE_MAX_CONCURRENCY / seconds,
            f"WorkerMaxConcurrency {TEMPLATE_MAX_CONCURRENCY} (template default; the "
            "runs' purge included)",
        ),
        Bottleneck(
            account / seconds,
            f"{ACCOUNT_CONCURRENCY:,} concurrent executions (account default quota; "
            f"an SQS mapping's maximum is {ESM_MAX_CONCURRENCY:,} too)",
        ),
        Bottleneck(
            purge_rate(load, TEMPLATE_MAX_CONCURRENCY),
            f"retention purge: a purger per expiry shard in the workers, at most "
            f"{min(INDEX_SHARDS, TEMPLATE_MAX_CONCURRENCY)} at once under WorkerMaxConcurrency "
            f"(with {INDEX_SHARDS}: {rate(purge_rate(load, account))}), {PURGE_THREADS} deletes "
            f"in flight each, {load.sweeper_seconds * 1000:.0f} ms of requests per run",
        ),
    ]


def print_model(loads: dict[str, ShapeLoad]) -> None:
    print("(b) model: steady state at each load; shares are of the per-partition limit")
    header = f"  {'shape':<18} {'sustainable':>14}  first bottleneck (data model: partition keys)"
    print(header)
    for name, load in loads.items():
        bottleneck = sustainable_rate(load)
        print(f"  {name:<18} {rate(bottleneck.runs_per_second):>14}  {bottleneck.what}")
    print("  the first account quota (adjustable: ask AWS to raise it before that load):")
    for name, load in loads.items():
        quota = quota_rate(load)
        print(f"  {name:<18} {rate(quota.runs_per_second):>14}  {quota.what}")
    print(
        "  the first limit of the template's defaults (a purge that falls behind throttles "
        "nothing: finished runs past their retention pile up):"
    )
    for name, load in loads.items():
        first = min(deployment_limits(load), key=lambda b: b.runs_per_second)
        print(f"  {name:<18} {rate(first.runs_per_second):>14}  {first.what}")
    print()
    for name, load in loads.items():
        for runs_per_second in LOADS:
            print(f"  {name} at {runs_per_second:,} runs/s")
            hottest = hottest_per_target(load, runs_per_second)
            for target, partition in sorted(hottest.items(), key=lambda kv: -kv[1].share):
                print(
                    f"      {target:<10} hottest key {partition.key!r:<28} "
                    f"{partition.units_per_second:>10,.0f} {partition.kind} units/s = "
                    f"{partition.share:6.0%} of its limit"
                    + ("  THROTTLED" if partition.share > 1 else "")
                )
            total_write = sum(load.target_write_units.values()) * runs_per_second
            total_read = sum(load.target_read_units.values()) * runs_per_second
            sqs = (
                load.service_requests("sqs") + load.messages * ESM_REQUESTS_PER_MESSAGE
            ) * runs_per_second
            messages = load.messages * runs_per_second
            concurrency = lambda_concurrency(load, runs_per_second)
            print(
                f"      DynamoDB {total_write:,.0f} WRU/s, {total_read:,.0f} RRU/s in all; "
                f"SQS {sqs:,.0f} requests/s; Lambda {messages:,.0f} messages/s, "
                f"{messages / BATCH_SIZE:,.0f} invocations/s, concurrency {concurrency:,.0f}"
            )
            cost = cost_per_million_runs(load)
            per_second = sum(cost.values()) / prices.MILLION * runs_per_second
            print(
                f"      cost ${per_second * 3600:,.0f} an hour, ${per_second * MONTH_SECONDS:,.0f}"
                " a 30-day month"
            )
        limits = deployment_limits(load)
        print(
            "      other limits: "
            + "; ".join(f"{rate(b.runs_per_second)} ({b.what})" for b in limits)
        )
    print()
    print("  cost per million runs (list prices above)")
    columns = ("DynamoDB", "SQS", "Lambda req", "Lambda GB-s", "S3", "total")
    print(f"  {'':<18} " + " ".join(f"{c:>11}" for c in columns))
    for name, load in loads.items():
        cost = cost_per_million_runs(load)
        values = [*cost.values(), sum(cost.values())]
        print(f"  {name:<18} " + " ".join(f"{'$' + format(v, ',.2f'):>11}" for v in values))
    print()


def print_simulation(loads: dict[str, ShapeLoad]) -> None:
    print(
        f"(c) simulation: {SIMULATED_SECONDS:.0f} virtual seconds after a warm-up, per-partition "
        "token buckets (on-demand: no burst credit), throttled requests retried as botocore does"
    )
    for name, load in loads.items():
        if name == "mix":
            streams = [(loads[shape].traces, share) for shape, share in MIX]
        else:
            streams = [(load.traces, 1.0)]
        bottleneck = sustainable_rate(load)
        checks = [*LOADS]
        if not math.isinf(bottleneck.runs_per_second):
            checks.insert(0, round(0.9 * bottleneck.runs_per_second))
        for runs_per_second in checks:
            result = simulate(
                streams, runs_per_second, seconds=SIMULATED_SECONDS, table_shards=load.table_shards
            )
            label = f"{runs_per_second:,} runs/s" + (
                " (90% of the sustainable rate)" if runs_per_second not in LOADS else ""
            )
            if result.total_throttles < 0.5:
                print(f"  {name} at {label}: 0 throttles")
                continue
            print(
                f"  {name} at {label}: {result.total_throttles:,.0f} throttled requests in "
                f"{SIMULATED_SECONDS:.0f} s, {result.throttled_share:.0%} of the attempts on "
                f"shared keys; {result.gave_up:,.0f} ran out of retries (their invocation "
                "fails and comes back from SQS)"
            )
            for (target, key, kind), count in result.throttles.most_common(3):
                bucket = (target, key, kind)
                units_per_run = (load.write_units if kind == "write" else load.read_units).get(
                    (target, key), 0.0
                )
                served = result.served_units.get(bucket, 0.0)
                print(
                    f"      {target} key {key!r} ({kind}s): {count:,.0f} throttled; it served "
                    f"{served:,.0f} units/s, {served / units_per_run if units_per_run else 0:,.0f}"
                    f" runs/s' worth; busiest second offered "
                    f"{result.peak_share.get(bucket, 0.0):.0%} of its limit"
                )
    print()


def print_summary(loads: dict[str, ShapeLoad]) -> None:
    print("summary (the issue's closing note quotes these)")
    print(
        f"  {'shape':<18} {'index writes':>12} {'index WCU':>10} {'WCU':>7} {'sustainable':>13}"
        f"  {'hottest key at 10,000 runs/s':<40} {'$/M runs':>9}"
    )
    for name, load in loads.items():
        index_targets = [t for t in load.target_write_units if t != TABLE]
        hottest = max(partition_loads(load, LOADS[-1]), key=lambda p: p.share, default=None)
        where = (
            f"{hottest.target} {hottest.key!r} {hottest.share:.0%} of its limit"
            if hottest is not None
            else "none shared"
        )
        print(
            f"  {name:<18} {sum(load.item_writes.get(t, 0.0) for t in index_targets):>12.2f} "
            f"{sum(load.target_write_units[t] for t in index_targets):>10.2f} "
            f"{sum(load.target_write_units.values()):>7.2f} "
            f"{rate(sustainable_rate(load).runs_per_second):>13}  {where:<40} "
            f"{'$' + format(sum(cost_per_million_runs(load).values()), ',.2f'):>9}"
        )
    print("  (index writes, index WCU and WCU are per run; sustainable: the data model's limit)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the runs measured per shape"
    )
    args = parser.parse_args()

    measurement = measure(SHAPES, latency=LATENCY, scale=args.scale)
    layout = measurement.layout
    layout_lines = [
        f"table {layout.table.hash_key} + {layout.table.range_key}",
        *(f"index {index.describe()}" for index in layout.indexes),
    ]
    print_header(layout_lines)
    for warning in measurement.warnings:
        print(f"WARNING: {warning}: the figures below count only what happened")
    if measurement.warnings:
        print()
    loads = {
        name: shape_load(name, traces, measurement.table_shards)
        for name, traces in measurement.traces.items()
    }
    loads["mix"] = mix(
        "mix " + " ".join(f"{share:.0%} {shape}" for shape, share in MIX),
        [(loads[shape], share) for shape, share in MIX],
    )
    print_measured(
        {k: v for k, v in loads.items() if k != "mix"},
        {k: len(v) for k, v in measurement.traces.items()},
        measurement.seconds,
    )
    print(f"  mix: {loads['mix'].name[4:]} (shares of runs)")
    print()
    print_model(loads)
    print_simulation(loads)
    print_summary(loads)
    print(
        f"notes: delays over {DELAY_CAP:.0f} s inside a run are cut to {DELAY_CAP:.0f} s in the "
        "simulated time line (steady-state rates do not depend on them); per-run partitions "
        "(keys naming the run) are left out of the simulation: each takes one run's requests."
    )
    print(f"reproduce: {COMMAND}")


if __name__ == "__main__":
    main()
