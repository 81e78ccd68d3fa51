"""Scheduled tasks: `@task(cron=..., timezone=...)` fires a run at each instant of its schedule.

The sweeper fires them (every minute in AWS, every 2 s in `durable dev`, `fire_schedules`
and `advance` in the test kit). Each sweep triggers every instant in `(now - lookback, now]`:

    ──────┬──────────────── lookback ────────────────┬──────►
      now - lookback      09:00 (due, not fired)     now        fires 09:00, started_at 09:00

Rules every firing honours:

- Exactly once per instant: the idempotency key is `cron:{task_id}:{instant in UTC}`, so two
  sweepers, a retried sweep or overlapping windows find the run already there.
- `ctx.run.started_at` is the scheduled instant, not when the sweep got to it, and it is the
  same on every replay. A task `timeout` counts from it too.
- No unbounded catch-up: an instant older than the lookback (the sweeper was down longer)
  is skipped, never fired late. A task deployed (or a schedule added) within the lookback
  after one of its instants fires that instant once.
- The lookback must stay shorter than the sweeper's purge settle time (1 hour): a firing's
  idempotency key is kept at least that long, so no instant can fire twice.

How an expression is read (time zones, daylight saving time, seconds): see `durable.cron`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from durable.clock import Clock
from durable.logs import library_logger
from durable.services.runs import RunHandle
from durable.task import TaskRegistry

# How far back a sweep looks for instants it has not fired yet (`schedule_lookback_seconds`).
DEFAULT_LOOKBACK = timedelta(minutes=5)


class Trigger(Protocol):
    """What fires a schedule: a `RunStarter`, or a `Client` (which starts runs the same way)."""

    def trigger(
        self,
        task_id: str,
        payload: Any = None,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
        *,
        started_at: datetime | None = None,
    ) -> RunHandle[Any]: ...


def idempotency_key(task_id: str, instant: datetime) -> str:
    """The key of a firing: one run per task and scheduled instant, whoever fires it."""
    return f"cron:{task_id}:{instant.astimezone(UTC).isoformat()}"


def fire_due_schedules(
    starter: Trigger,
    registry: TaskRegistry,
    clock: Clock,
    lookback: timedelta = DEFAULT_LOOKBACK,
    *,
    since: datetime | None = None,
) -> list[RunHandle[Any]]:
    """Trigger every scheduled instant in `(now - lookback, now]`; returns the runs started.

    Instants before `since` are not fired either (the test kit passes its start: nothing
    was running before it). An instant fired before (by this sweeper or another) gives back
    its run, which is not in the result. A firing that fails (throttling, say) is logged and
    left to the next sweep, which tries again while the instant is within the lookback; the
    other tasks still fire.
    """
    now = clock.now()
    after = now - lookback
    if since is not None:
        # Instants carry whole seconds at most, so `> since - 1 µs` is `>= since`.
        after = max(after, since - timedelta(microseconds=1))
    started: list[RunHandle[Any]] = []
    for definition in registry:
        schedule = definition.schedule
        if schedule is None:
            continue
        for instant in schedule.instants(after, now):
            try:
                handle = starter.trigger(
                    definition.id,
                    definition.scheduled_payload,
                    idempotency_key=idempotency_key(definition.id, instant),
                    started_at=instant,
                )
            except Exception:
                library_logger().exception(
                    "could not fire a scheduled run; the next sweep tries again",
                    task_id=definition.id,
                    scheduled_at=instant.isoformat(),
                )
                continue
            if handle.created:
                library_logger().info(
                    "fired a scheduled run",
                    task_id=definition.id,
                    run_id=handle.run_id,
                    scheduled_at=instant.isoformat(),
                )
                started.append(handle)
    return started


def next_firing(registry: TaskRegistry, after: datetime) -> datetime | None:
    """The earliest instant strictly after `after` at which any task's schedule fires."""
    instants = [
        instant
        for definition in registry
        if definition.schedule is not None
        and (instant := definition.schedule.next_after(after)) is not None
    ]
    return min(instants, default=None)
