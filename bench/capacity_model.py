"""The capacity model's arithmetic and its simulator: pure Python, no AWS, no moto.

Input: per-run access traces measured on moto (`bench/capacity_runs.py`, with
`bench/capacity_meter.py`): every DynamoDB request's effect on the partition key values of
the table and of each index it touched, in request units, at a modeled time since the run
started. From these:

- `ShapeLoad`: what one run costs on average (per partition key, per target, per service).
  Runs count children: a 100-item `ctx.map` is 101 runs. A key is *shared* when its value
  does not name the run (constant keys such as `RUN` or `WAKE`, sharded ones such as
  `RUN#7`, a task id): only shared keys add up across runs. A run's own partition
  (`RUN#<run_id>`) takes that run's requests only, so it is never hot at any load.
- Shards: keys of one target that differ only by a short number after their last `#`
  (`RUN#0` ... `RUN#15`) are one sharded key. A few dozen runs land on their shards
  unevenly by chance, so the model spreads a family's load evenly over the shards it saw
  (fewer shards seen than exist only overstates the load of each), and prints how uneven
  the measurement was.
- `partition_loads`, `sustainable_rate`: steady-state rates on each shared key at a load,
  against DynamoDB's per-partition limits (1,000 write units and 3,000 read units a second
  per partition key value; an index partition that cannot keep up throttles the table's
  writes, so index keys count like table keys).
- `simulate`: the same load on a virtual clock, per tick: runs arrive (Poisson), each brings
  the measured runs' mean access trace (so shared keys keep the spread the measurement
  saw), every partition key value is a token bucket refilled at its limit (on-demand has no
  burst credit: at most one second of unused capacity is kept), and a throttled request is
  retried by its worker with botocore's standard backoff (a random wait of up to 1 s, 2 s,
  4 s...; after 6 attempts, as `durable.aws` configures, the invocation fails and SQS
  delivers it again 10 s later; botocore's retry quota is not modelled). Aggregated per key
  per tick: seconds of simulated load take well under a second.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

WRITE_UNITS_PER_PARTITION = 1_000.0  # per partition key value, per second
READ_UNITS_PER_PARTITION = 3_000.0
TABLE_QUOTA_UNITS = 40_000.0  # on-demand, per table, read and write each (adjustable quota)
BOTOCORE_ATTEMPTS = 6  # durable.aws.RETRY_ATTEMPTS: the first try and five retries
BOTOCORE_MAX_BACKOFF = 20.0  # seconds (botocore standard retry mode)
REDELIVERY_SECONDS = 10.0  # durable.worker.redelivery.FIRST_RETRY

Bucket = tuple[str, str, str]  # (target, partition key value, "write" | "read")
# A shard of a sharded key: `RUN#7`, `WAKE#12` (a short number after the last `#`).
SHARD = re.compile(r"^(?P<family>.*#)(?P<shard>\d{1,4})$")


@dataclass(frozen=True, slots=True)
class Access:
    """One request's effect on one partition key value of the table or of an index."""

    target: str  # TABLE (bench/dynamodb_items.py) or an index name
    key: str  # the partition key value
    write_units: float
    read_units: float
    item_writes: int  # items written there (a put or a delete; an index key change is 2)
    at: float  # modeled seconds since the run was triggered
    operation: str
    shared: bool  # False when the key names the run (its own partition)


@dataclass
class RunTrace:
    """What one measured top-level run (with its children) did."""

    runs: int  # the run and its children
    accesses: list[Access] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)  # "service.Operation" -> count
    messages: int = 0  # worker invocations (SQS messages handled)
    worker_seconds: float = 0.0  # modeled: measured compute + assumed latency per request
    compute_seconds: float = 0.0  # measured, moto's own time excluded
    sweeper_seconds: float = 0.0  # modeled time of its purge (requests x latency, in a worker)


@dataclass
class ShapeLoad:
    """The mean cost of one run (children counted as runs) of a shape, or of a mix."""

    name: str
    runs_per_trace: float
    write_units: dict[tuple[str, str], float]  # shared (target, key) -> units per run
    read_units: dict[tuple[str, str], float]
    target_write_units: dict[str, float]  # all keys of a target, per run
    target_read_units: dict[str, float]
    item_writes: dict[str, float]  # items written per run, per target
    requests: dict[str, float]  # per run
    messages: float
    worker_seconds: float
    sweeper_seconds: float
    traces: list[RunTrace]
    # (target, family such as "RUN#") -> (shards seen, busiest shard's load / the mean)
    shard_families: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    # The table's own shard count (its config item), when it has one: a sharded key's load
    # spreads over that many shards, not only over those a few dozen runs happened to visit.
    table_shards: int = 0

    @property
    def worker_seconds_per_message(self) -> float:
        return self.worker_seconds / self.messages if self.messages else 0.0

    def service_requests(self, service: str) -> float:
        return sum(n for name, n in self.requests.items() if name.startswith(service + "."))


def shape_load(name: str, traces: Sequence[RunTrace], table_shards: int = 0) -> ShapeLoad:
    """Average the traces of one shape into the cost of one run."""
    runs = sum(trace.runs for trace in traces)
    write_units: dict[tuple[str, str], float] = defaultdict(float)
    read_units: dict[tuple[str, str], float] = defaultdict(float)
    target_write: dict[str, float] = defaultdict(float)
    target_read: dict[str, float] = defaultdict(float)
    item_writes: dict[str, float] = defaultdict(float)
    requests: Counter[str] = Counter()
    for trace in traces:
        requests.update(trace.requests)
        for access in trace.accesses:
            target_write[access.target] += access.write_units / runs
            target_read[access.target] += access.read_units / runs
            item_writes[access.target] += access.item_writes / runs
            if access.shared:
                write_units[access.target, access.key] += access.write_units / runs
                read_units[access.target, access.key] += access.read_units / runs
    observed = _family_skew(shard_families([*write_units, *read_units]), write_units, read_units)
    families = shard_families([*write_units, *read_units], table_shards)
    return ShapeLoad(
        name=name,
        runs_per_trace=runs / len(traces),
        write_units=_spread(write_units, families),
        read_units=_spread(read_units, families),
        target_write_units=dict(target_write),
        target_read_units=dict(target_read),
        item_writes=dict(item_writes),
        requests={op: n / runs for op, n in requests.items()},
        messages=sum(t.messages for t in traces) / runs,
        worker_seconds=sum(t.worker_seconds for t in traces) / runs,
        sweeper_seconds=sum(t.sweeper_seconds for t in traces) / runs,
        traces=list(traces),
        shard_families=observed,
        table_shards=table_shards,
    )


Families = dict[tuple[str, str], tuple[tuple[str, str], ...]]


def shard_families(keys: Iterable[tuple[str, str]], table_shards: int = 0) -> Families:
    """Each shared (target, key) that is one shard of a sharded key -> all its shards: those
    seen, and with `table_shards` (the table's count) every shard `0 .. table_shards - 1`."""
    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for target, key in keys:
        match = SHARD.match(key)
        if match is not None:
            family = match.group("family")
            groups[target, family].add(key)
            groups[target, family].update(f"{family}{k}" for k in range(table_shards))
    families: Families = {}
    for (target, _), members in groups.items():
        if len(members) >= 2:
            shards = tuple((target, member) for member in sorted(members))
            for shard in shards:
                families[shard] = shards
    return families


def _spread(
    units: dict[tuple[str, str], float], families: Families
) -> dict[tuple[str, str], float]:
    """The load of every sharded key spread evenly over the shards of its family."""
    spread = dict(units)
    for key, shards in families.items():
        spread[key] = sum(units.get(shard, 0.0) for shard in shards) / len(shards)
    return spread


def _family_skew(
    families: Families, *loads: dict[tuple[str, str], float]
) -> dict[tuple[str, str], tuple[int, float]]:
    skew: dict[tuple[str, str], tuple[int, float]] = {}
    for (target, key), shards in families.items():
        match = SHARD.match(key)
        assert match is not None
        family = (target, match.group("family"))
        if family in skew:
            continue
        ratios = []
        for units in loads:
            values = [units.get(shard, 0.0) for shard in shards]
            if sum(values) > 0:
                ratios.append(max(values) / (sum(values) / len(values)))
        skew[family] = (len(shards), max(ratios, default=1.0))
    return skew


def mix(name: str, parts: Sequence[tuple[ShapeLoad, float]]) -> ShapeLoad:
    """A mix of shapes, each with its share of the runs (shares sum to 1)."""

    def blend(pick: str) -> dict[object, float]:
        out: dict[object, float] = defaultdict(float)
        for load, share in parts:
            for k, v in getattr(load, pick).items():
                out[k] += share * v
        return dict(out)

    return ShapeLoad(
        name=name,
        runs_per_trace=sum(load.runs_per_trace * share for load, share in parts),
        write_units=blend("write_units"),  # type: ignore[arg-type]
        read_units=blend("read_units"),  # type: ignore[arg-type]
        target_write_units=blend("target_write_units"),  # type: ignore[arg-type]
        target_read_units=blend("target_read_units"),  # type: ignore[arg-type]
        item_writes=blend("item_writes"),  # type: ignore[arg-type]
        requests=blend("requests"),  # type: ignore[arg-type]
        messages=sum(load.messages * share for load, share in parts),
        worker_seconds=sum(load.worker_seconds * share for load, share in parts),
        sweeper_seconds=sum(load.sweeper_seconds * share for load, share in parts),
        traces=[],
        table_shards=max((load.table_shards for load, _ in parts), default=0),
    )


# -- steady-state rates -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionLoad:
    target: str
    key: str
    kind: str  # "write" | "read"
    units_per_second: float

    @property
    def limit(self) -> float:
        return WRITE_UNITS_PER_PARTITION if self.kind == "write" else READ_UNITS_PER_PARTITION

    @property
    def share(self) -> float:
        """The share of the partition's limit this load takes (over 1: throttled)."""
        return self.units_per_second / self.limit


def partition_loads(load: ShapeLoad, runs_per_second: float) -> list[PartitionLoad]:
    """The rate on every shared partition key at a load, busiest (by share) first."""
    loads = [
        PartitionLoad(target, key, "write", units * runs_per_second)
        for (target, key), units in load.write_units.items()
        if units > 0
    ] + [
        PartitionLoad(target, key, "read", units * runs_per_second)
        for (target, key), units in load.read_units.items()
        if units > 0
    ]
    return sorted(loads, key=lambda p: p.share, reverse=True)


def hottest_per_target(load: ShapeLoad, runs_per_second: float) -> dict[str, PartitionLoad]:
    """The busiest shared partition key of the table and of each index."""
    hottest: dict[str, PartitionLoad] = {}
    for partition in partition_loads(load, runs_per_second):
        hottest.setdefault(partition.target, partition)
    return hottest


@dataclass(frozen=True, slots=True)
class Bottleneck:
    runs_per_second: float
    what: str


def sustainable_rate(load: ShapeLoad) -> Bottleneck:
    """The highest steady load (runs a second) before a partition key throttles: the data
    model's limit, which no quota request raises."""
    candidates = [
        Bottleneck(
            partition.limit / (partition.units_per_second or math.inf),
            f"{partition.target} key {partition.key!r}: {partition.limit:,.0f} "
            f"{'write' if partition.kind == 'write' else 'read'} units/s per partition",
        )
        for partition in partition_loads(load, 1.0)
    ]
    return min(candidates, key=lambda b: b.runs_per_second, default=Bottleneck(math.inf, "none"))


def quota_rate(load: ShapeLoad) -> Bottleneck:
    """The highest steady load before the table's on-demand throughput quota (per table,
    adjustable: AWS raises it on request)."""
    candidates = []
    for units_by_target, kind in (
        (load.target_write_units, "write"),
        (load.target_read_units, "read"),
    ):
        for target, units in units_by_target.items():
            if units > 0:
                candidates.append(
                    Bottleneck(
                        TABLE_QUOTA_UNITS / units,
                        f"{target}: {TABLE_QUOTA_UNITS:,.0f} {kind} units/s table quota "
                        f"(at 10,000 runs/s it needs {units * 10_000:,.0f})",
                    )
                )
    return min(candidates, key=lambda b: b.runs_per_second, default=Bottleneck(math.inf, "none"))


def lambda_concurrency(load: ShapeLoad, runs_per_second: float) -> float:
    """Concurrent worker executions: messages a second times the modeled time per message."""
    return runs_per_second * load.worker_seconds


# -- the simulator ------------------------------------------------------------------------


@dataclass
class SimulationResult:
    runs_per_second: float
    seconds: float
    requests: float  # requests to shared keys served in the measured window
    throttles: Counter[Bucket]  # throttled requests (each retry that is throttled counts)
    gave_up: float  # requests that ran out of attempts (the invocation failed, redelivered)
    peak_share: dict[Bucket, float]  # busiest second's offered units / limit, per bucket
    served_units: dict[Bucket, float]  # units served per second, on average

    @property
    def total_throttles(self) -> float:
        return sum(self.throttles.values())

    @property
    def throttled_share(self) -> float:
        """Throttled attempts as a share of all attempts on shared keys."""
        attempts = self.requests + self.total_throttles
        return self.total_throttles / attempts if attempts else 0.0


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def mean_kernel(
    traces: Iterable[RunTrace], tick: float, table_shards: int = 0
) -> tuple[float, dict[tuple[int, Bucket], tuple[float, float]]]:
    """The mean shared-key demand of one trace, by (offset tick, bucket): (units, requests).

    Returns runs per trace too (arrivals are counted in traces).
    """
    traces = list(traces)
    families = shard_families(
        {(a.target, a.key) for trace in traces for a in trace.accesses if a.shared}, table_shards
    )
    demand: dict[tuple[int, Bucket], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for trace in traces:
        for access in trace.accesses:
            if not access.shared:
                continue
            offset = int(access.at / tick)
            # A shard's load spreads over its family's shards (see the module docstring).
            shards = families.get((access.target, access.key), ((access.target, access.key),))
            share = 1 / (len(traces) * len(shards))
            for kind, units in (("write", access.write_units), ("read", access.read_units)):
                if units > 0:
                    for target, key in shards:
                        cell = demand[offset, (target, key, kind)]
                        cell[0] += units * share
                        cell[1] += share
    runs = sum(t.runs for t in traces) / len(traces)
    return runs, {k: (v[0], v[1]) for k, v in demand.items()}


def simulate(
    streams: Sequence[tuple[Sequence[RunTrace], float]],
    runs_per_second: float,
    seconds: float = 10.0,
    tick: float = 0.1,
    warmup: float | None = None,
    seed: int = 9,
    table_shards: int = 0,
) -> SimulationResult:
    """Drive `runs_per_second` (split over `streams`: traces and their share of runs) through
    per-partition token buckets on a virtual clock; count the throttles after the warm-up
    (by default as long as the longest trace, at most 30 s)."""
    rng = random.Random(seed)
    kernels = []
    for traces, share in streams:
        runs_per_trace, kernel = mean_kernel(traces, tick, table_shards)
        kernels.append((runs_per_second * share / runs_per_trace * tick, kernel))
    longest = max((offset for _, k in kernels for offset, _ in k), default=0) * tick
    warmup = min(longest + 1.0, 30.0) if warmup is None else warmup
    warm_ticks, total_ticks = round(warmup / tick), round((warmup + seconds) / tick)
    per_second = round(1 / tick)

    # pending[tick][(bucket, attempt)] = [units, requests]
    pending: dict[int, dict[tuple[Bucket, int], list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0.0, 0.0])
    )
    tokens: dict[Bucket, float] = {}
    throttles: Counter[Bucket] = Counter()
    offered_in_second: dict[Bucket, float] = defaultdict(float)
    peak: dict[Bucket, float] = defaultdict(float)
    served_requests = 0.0
    served_units: dict[Bucket, float] = defaultdict(float)
    gave_up = 0.0

    for now in range(total_ticks):
        for arrivals_mean, kernel in kernels:
            arrivals = _poisson(rng, arrivals_mean)
            if arrivals:
                for (offset, bucket), (units, requests) in kernel.items():
                    cell = pending[now + offset][bucket, 0]
                    cell[0] += arrivals * units
                    cell[1] += arrivals * requests
        due = pending.pop(now, {})
        by_bucket: dict[Bucket, list[tuple[int, list[float]]]] = defaultdict(list)
        for (bucket, attempt), cell in due.items():
            by_bucket[bucket].append((attempt, cell))
        measuring = now >= warm_ticks
        for bucket, cells in by_bucket.items():
            limit = WRITE_UNITS_PER_PARTITION if bucket[2] == "write" else READ_UNITS_PER_PARTITION
            available = min(limit, tokens.get(bucket, limit) + limit * tick)
            wanted = sum(cell[0] for _, cell in cells)
            served = min(wanted, available)
            tokens[bucket] = available - served
            if measuring:
                offered_in_second[bucket] += wanted
                served_units[bucket] += served / seconds
            refused = (wanted - served) / wanted if wanted > 0 else 0.0
            for attempt, (units, requests) in cells:
                if measuring:
                    served_requests += requests * (1 - refused)
                if refused <= 0:
                    continue
                if measuring:
                    throttles[bucket] += requests * refused
                if attempt + 1 < BOTOCORE_ATTEMPTS:
                    # botocore standard mode: a random wait of up to 2**attempt seconds.
                    spread = max(1, round(min(2**attempt, BOTOCORE_MAX_BACKOFF) / tick))
                    for later in range(1, spread + 1):
                        cell = pending[now + later][bucket, attempt + 1]
                        cell[0] += units * refused / spread
                        cell[1] += requests * refused / spread
                else:
                    if measuring:
                        gave_up += requests * refused
                    cell = pending[now + round(REDELIVERY_SECONDS / tick)][bucket, 0]
                    cell[0] += units * refused
                    cell[1] += requests * refused
        if measuring and (now - warm_ticks + 1) % per_second == 0:
            for bucket, units in offered_in_second.items():
                limit = (
                    WRITE_UNITS_PER_PARTITION if bucket[2] == "write" else READ_UNITS_PER_PARTITION
                )
                peak[bucket] = max(peak[bucket], units / limit)
            offered_in_second.clear()
    return SimulationResult(
        runs_per_second=runs_per_second,
        seconds=seconds,
        requests=served_requests,
        throttles=throttles,
        gave_up=gave_up,
        peak_share=dict(peak),
        served_units=dict(served_units),
    )
