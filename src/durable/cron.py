"""Cron expressions: `CronSchedule` parses one and walks its instants in a time zone.

Expressions are standard five-field cron (`minute hour day month weekday`, with `L`, `LW`,
`#n`, names and the nicknames `@hourly`, `@daily`...), evaluated by `cronsim` as Debian's
cron does, in the task's IANA time zone, daylight saving time included: a local time the
clocks skip fires when they jump, a repeated one fires once (the first time round). An
optional leading sixth field holds seconds (`*/5 * * * * *`), which only `durable dev` and
tests can honour closely: in AWS a schedule fires at most one sweep interval late.
How the sweeper fires them: see `durable.services.schedules`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

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
