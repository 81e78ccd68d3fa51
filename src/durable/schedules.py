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

Expressions are standard five-field cron (`minute hour day month weekday`, with `L`, `LW`,
`#n`, names and the nicknames `@hourly`, `@daily`...), evaluated by `cronsim` as Debian's
cron does, in the task's IANA time zone, daylight saving time included: a local time the
clocks skip fires when they jump, a repeated one fires once (the first time round). An
optional leading sixth field holds seconds (`*/5 * * * * *`), which only `durable dev` and
tests can honour closely: in AWS a schedule fires at most one sweep interval late.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from durable.logs import library_logger

if TYPE_CHECKING:
    from durable.client import Client, RunHandle
    from durable.clock import Clock
    from durable.task import TaskRegistry

# How far back a sweep looks for instants it has not fired yet (`schedule_lookback_seconds`).
DEFAULT_LOOKBACK = timedelta(minutes=5)

# The nicknames of Vixie cron, which cronsim does not read itself.
NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression in a time zone; `parse` refuses a bad one."""

    expression: str  # as given (a nickname stays a nickname)
    timezone: str
    zone: tzinfo
    fields: str  # what cronsim evaluates

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronSchedule:
        """The schedule, or ValueError saying what is wrong with the expression or the zone."""
        try:
            zone: tzinfo = UTC if timezone == "UTC" else ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r} (use an IANA name)") from exc
        fields = NICKNAMES.get(expression.strip().lower(), expression)
        try:
            # cronsim parses in its constructor; the start instant does not matter here.
            CronSim(fields, datetime(2000, 1, 1, tzinfo=zone))
        except (CronSimError, ValueError) as exc:
            raise ValueError(f"bad cron expression {expression!r}: {exc}") from exc
        return cls(expression=expression, timezone=timezone, zone=zone, fields=fields)

    def instants(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Each instant of the schedule in `(after, until]`, in order, as aware UTC datetimes."""
        # cronsim walks local wall time and returns the first match strictly after its start.
        # A repeated local hour loses its fold when cronsim drops the zone, which can only
        # move the start earlier: instants before `after` are skipped below.
        for local in CronSim(self.fields, after.astimezone(self.zone)):
            instant = local.astimezone(UTC)
            if instant > until:
                return
            if instant > after:
                yield instant

    def next_after(self, when: datetime) -> datetime | None:
        """The first instant strictly after `when` (None if there is none in 50 years)."""
        for local in CronSim(self.fields, when.astimezone(self.zone)):
            instant = local.astimezone(UTC)
            if instant > when:
                return instant
        return None


def idempotency_key(task_id: str, instant: datetime) -> str:
    """The key of a firing: one run per task and scheduled instant, whoever fires it."""
    return f"cron:{task_id}:{instant.astimezone(UTC).isoformat()}"


def fire_due_schedules(
    client: Client,
    registry: TaskRegistry,
    clock: Clock,
    lookback: timedelta = DEFAULT_LOOKBACK,
    *,
    since: datetime | None = None,
) -> list[RunHandle]:
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
    started: list[RunHandle] = []
    for definition in registry:
        schedule = definition.schedule
        if schedule is None:
            continue
        for instant in schedule.instants(after, now):
            try:
                handle = client.trigger(
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
