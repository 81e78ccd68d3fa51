"""Figures about runs, queues and workers (`GET /metrics`, `Client.stats`, `durable stats`):
counted as runs go, read by key, never by scanning the table.

What is counted, per task, and where (each a best-effort write AFTER the run's own write):

    at                                   window counters (10-minute bucket) lifetime totals
    a run created (`services.runs`)      started                             created
    a run ended (worker, cancel)         completed|failed|cancelled|         the same
                                         timed_out, h<bin> (its duration)
    an invocation that scheduled         step_retries, attempt_retries       -
    retries (the worker)
    a run held for a code fix (worker)   held                                held

The store keeps them as one counter item per task, shard and ring slot beside the runs
(`RunStats`, `durable.storage._tables` draws the key and attributes): 4 shards per task (by
the run's hash: one busy task writes 4 keys, not one), 8 slots per shard (a ring of
buckets of 10 minutes: bounded, no expiry needed), each item holding its slot's bucket
and its share of the lifetime totals.

Cost per run: 1 write at its start (its bucket and its total, one `UpdateItem` of the
current slot's item), 1 at its end, 1 per invocation that schedules step or task retries,
plus one write per task per process (the task list). A bucket's first write in a slot
costs one more (the ring's rollover: its guarded add fails, a second write starts the
bucket), once per 80 minutes of a task's activity per shard. A write is billed by the
item's size (1 unit per KB): one slot's item, 0.1 to 0.4 KB as measured by
`bench/metrics_scale.py`, so 1 unit; 2 only when a bucket's histogram fills most of its
120 bins (1.6 KB at most with 10-digit amounts).

Reading: `BatchGetItem`s of the counter items (32 keys a task, 100 a request, sent at
once; 0.5 read unit an item), one query of the task list, and the active runs from the
status index (`count_active`: QUEUED, RUNNING, WAITING, RETRYING, one query per status and
index shard, on the listings' thread pool, at most `ACTIVE_CAP` runs a status read). The
terminal statuses come from the lifetime totals.
Choosing the index over counters moved at every transition: a transition is a run's own
write, counters moved beside it would drift for good at each crash between the two (a
RUNNING count that never comes down), where the index is always exact; its cost is a
bounded read at each request, and no write.

Rules, and what they cost in accuracy:
- A counter write never fails, loses or delays a run: any `Exception` it raises is logged
  (a warning) and dropped. A crash between the run's write and its counter's under-counts
  by one; so does a throttled counter write. The run is never re-run for it.
- A run's bucket and totals are one write: both are counted, or neither. Two writers
  rolling a slot over at once: one wins, the other adds to the bucket it started (counted
  once each). An add whose bucket has left the ring (a writer 80 minutes late) counts
  its totals only; one racing the slot's rollover may leave its counter in the new bucket.
- The last hour is the buckets since `now - 1h` rounded down to 10 minutes (60 to 70
  minutes). p50/p95 come from a log-scale histogram of run durations (`finished_at` minus
  `started_at`, or `created_at` for a run that never started): bins 2^(1/4) wide from 10 ms,
  interpolated within a bin, so within about 10 % of the true value.
- Retries: a step retry is a failed step attempt recorded with a retry time, a task-attempt
  retry a failed attempt with one (counted by the invocation that recorded them).
- Queue figures are SQS's approximate attributes; workers in use are the in-flight
  messages (each is one worker invocation), at most the limit: on AWS the SQS event source
  mapping's `MaximumConcurrency` (`DURABLE_WORKER_MAX_CONCURRENCY`), in `durable dev` the
  container pool's size. A message in flight whose invocation died counts until its
  visibility timeout ends, so it is an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from durable.clock import Clock
from durable.logs import library_logger
from durable.queues.base import QueueDepths, WakeQueue, queue_depths
from durable.records import RunRecord, RunStatus
from durable.storage.base import RunStats, TaskCounts

BUCKET = timedelta(minutes=10)
WINDOW = timedelta(hours=1)
ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.RETRYING)
ENDED_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT)
# At most this many runs of an active status are read from the index per request.
ACTIVE_CAP = 10_000
# The duration histogram: bin 0 holds durations under `_H_MIN`, bin i >= 1 those in
# [_H_MIN * r^(i-1), _H_MIN * r^i), r = 2^(1/4); the last bin holds everything above.
_H_MIN = 0.01
_H_RATIO = 2**0.25
_H_BINS = 120  # up to about 10 ms * 2^30: 124 days

_COUNTER_OF_STATUS = {
    RunStatus.COMPLETED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.TIMED_OUT: "timed_out",
}


def bucket_of(at: datetime) -> int:
    """The number of the 10-minute bucket `at` falls in."""
    return math.floor(at.timestamp() / BUCKET.total_seconds())


def duration_bin(seconds: float) -> int:
    """The histogram bin of a run that lasted `seconds`."""
    if seconds < _H_MIN:
        return 0
    return min(_H_BINS - 1, 1 + math.floor(math.log(seconds / _H_MIN, _H_RATIO)))


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The `q` quantile (0..1) of the durations in `histogram` (bin -> count), interpolated
    geometrically within its bin; None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(histogram):
        count = histogram[index]
        if count <= 0:
            continue
        if seen + count >= rank:
            share = (rank - seen) / count
            if index == 0:
                return _H_MIN * share
            low = _H_MIN * _H_RATIO ** (index - 1)
            return float(low * _H_RATIO**share)
        seen += count
    return _H_MIN * _H_RATIO ** (max(histogram) or 0)


# -- counting (best effort, after the run's own write) ------------------------------------


def _add(
    store: RunStats,
    run: RunRecord,
    at: datetime,
    window: Mapping[str, int],
    totals: Mapping[str, int],
) -> None:
    try:
        store.add_stats(run.task_id, bucket_of(at), window, totals, run.run_id)
    except Exception as exc:  # a figure is never worth a run: log it and go on
        library_logger().warning(
            "run counters not updated", run_id=run.run_id, task_id=run.task_id, error=str(exc)
        )


def count_started(store: RunStats, clock: Clock, run: RunRecord) -> None:
    """Count a run just created."""
    _add(store, run, clock.now(), {"started": 1}, {"created": 1})


def count_ended(store: RunStats, clock: Clock, run: RunRecord) -> None:
    """Count a run just ended (as stored, terminal), with its duration."""
    name = _COUNTER_OF_STATUS.get(run.status)
    if name is None:
        return
    now = clock.now()
    ended = run.finished_at or now
    began = run.started_at or run.created_at
    seconds = max((ended - began).total_seconds(), 0.0)
    window = {name: 1, f"h{duration_bin(seconds)}": 1}
    _add(store, run, now, window, {name: 1})


def count_retries(
    store: RunStats, clock: Clock, run: RunRecord, step_retries: int, attempt_retries: int
) -> None:
    """Count the step and task-attempt retries an invocation of `run` scheduled."""
    window = {
        name: amount
        for name, amount in (("step_retries", step_retries), ("attempt_retries", attempt_retries))
        if amount > 0
    }
    if window:
        _add(store, run, clock.now(), window, {})


def count_held(store: RunStats, clock: Clock, run: RunRecord) -> None:
    """Count a run just held for a code fix (each hold, not each recheck of it)."""
    _add(store, run, clock.now(), {"held": 1}, {"held": 1})


# -- reading -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LastHour:
    """A task's runs of the last hour (see the module's docstring)."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    step_retries: int = 0
    attempt_retries: int = 0
    held: int = 0
    p50_seconds: float | None = None
    p95_seconds: float | None = None

    @property
    def retry_rate(self) -> float | None:
        """Retries (step and attempt) per run started; None when none started."""
        if self.started == 0:
            return None
        return (self.step_retries + self.attempt_retries) / self.started

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "timed_out": self.timed_out,
            "step_retries": self.step_retries,
            "attempt_retries": self.attempt_retries,
            "held": self.held,
            "retry_rate": self.retry_rate,
            "p50_seconds": self.p50_seconds,
            "p95_seconds": self.p95_seconds,
        }


@dataclass(frozen=True, slots=True)
class TaskStats:
    task_id: str
    by_status: dict[RunStatus, int]
    last_hour: LastHour
    held: int = 0  # holds for a code fix, ever (each hold counts, a recheck does not)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "by_status": _status_dict(self.by_status),
            "last_hour": self.last_hour.to_dict(),
            "held": self.held,
        }


@dataclass(frozen=True, slots=True)
class WorkerStats:
    in_use: int | None
    limit: int | None


@dataclass(frozen=True, slots=True)
class Stats:
    """Everything `GET /metrics` answers (`to_dict` is its JSON)."""

    generated_at: datetime
    queue: QueueDepths | None
    workers: WorkerStats
    tasks: list[TaskStats]
    capped: frozenset[RunStatus] = field(default_factory=frozenset)

    @property
    def totals(self) -> dict[RunStatus, int]:
        totals = dict.fromkeys(RunStatus, 0)
        for task in self.tasks:
            for status, count in task.by_status.items():
                totals[status] += count
        return totals

    def to_dict(self) -> dict[str, Any]:
        queue = self.queue
        return {
            "generated_at": _iso(self.generated_at),
            "queue": {
                "name": queue.name if queue else None,
                "depth": queue.depth if queue else None,
                "in_flight": queue.in_flight if queue else None,
                "delayed": queue.delayed if queue else None,
            },
            "dead_letter": {
                "name": queue.dead_letter_name if queue else None,
                "depth": queue.dead_letter_depth if queue else None,
            },
            "workers": {"in_use": self.workers.in_use, "limit": self.workers.limit},
            "tasks": [task.to_dict() for task in self.tasks],
            "totals": {"by_status": _status_dict(self.totals)},
            # Active statuses with more runs than were read: their figures are lower bounds.
            "capped_statuses": sorted(str(status) for status in self.capped),
        }


def collect_stats(
    store: RunStats,
    queue: WakeQueue,
    clock: Clock,
    task_ids: Iterable[str],
    worker_limit: int | None = None,
) -> Stats:
    """Read every figure: a handful of requests by key (see the module's docstring)."""
    now = clock.now()
    depths = queue_depths(queue)
    active = store.count_active(ACTIVE_STATUSES, ACTIVE_CAP)
    tasks = sorted(set(task_ids) | store.stats_task_ids() | set(active.counts))
    counted = store.read_stats(tasks, bucket_of(now - WINDOW), bucket_of(now))
    return Stats(
        generated_at=now,
        queue=depths,
        workers=_workers(depths, worker_limit),
        tasks=[_task_stats(counts, active.counts.get(counts.task_id, {})) for counts in counted],
        capped=active.capped,
    )


def _workers(depths: QueueDepths | None, limit: int | None) -> WorkerStats:
    if depths is None:
        return WorkerStats(in_use=None, limit=limit)
    in_use = depths.in_flight if limit is None else min(depths.in_flight, limit)
    return WorkerStats(in_use=in_use, limit=limit)


def _task_stats(counts: TaskCounts, active: Mapping[RunStatus, int]) -> TaskStats:
    by_status = {status: active.get(status, 0) for status in ACTIVE_STATUSES}
    for status in ENDED_STATUSES:
        by_status[status] = counts.totals.get(_COUNTER_OF_STATUS[status], 0)
    window = counts.window
    histogram = {
        int(name[1:]): amount
        for name, amount in window.items()
        if name.startswith("h") and name[1:].isdigit()
    }
    p50, p95 = percentile(histogram, 0.5), percentile(histogram, 0.95)
    last_hour = LastHour(
        started=window.get("started", 0),
        completed=window.get("completed", 0),
        failed=window.get("failed", 0),
        cancelled=window.get("cancelled", 0),
        timed_out=window.get("timed_out", 0),
        step_retries=window.get("step_retries", 0),
        attempt_retries=window.get("attempt_retries", 0),
        held=window.get("held", 0),
        p50_seconds=None if p50 is None else round(p50, 3),
        p95_seconds=None if p95 is None else round(p95, 3),
    )
    return TaskStats(counts.task_id, by_status, last_hour, counts.totals.get("held", 0))


def _status_dict(counts: Mapping[RunStatus, int]) -> dict[str, int]:
    return {str(status): counts.get(status, 0) for status in (*ACTIVE_STATUSES, *ENDED_STATUSES)}


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
