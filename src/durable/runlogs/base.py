"""The `RunLogSource` port: the lines a run logged, page by page, newer lines on demand.

Lines are read where the runtime already writes them (CloudWatch Logs on AWS and in
`durable dev`, memory in the test kit): reading a run's logs costs no DynamoDB write per
line. Every adapter honours the same contract:

- `read(run_id, cursor=..., limit=..., since=...)` returns up to `limit` lines of exactly
  `run_id` (a child run's id starts with its parent's: `run_x.1.2.0` is not `run_x`), oldest
  first, and a `next_cursor`, always: passed back, it returns only lines not returned yet,
  so a follower polls with it and sees each line once. `more` says the read stopped
  before the end (ask again at once): fewer than `limit` lines do not mean the end. A
  cursor that is not one of ours raises `InvalidLogCursorError` (400 in the API).
- The cursor is opaque: base64 JSON of the position reached, the last timestamp (ms) and
  short hashes of the events already returned at that millisecond (several lines share
  one), so equal timestamps page correctly. Events are read in timestamp order; one that
  is ingested later with a timestamp older than the position is not returned to a
  follower (CloudWatch keeps a stream's events in order; a run logs in one invocation at a
  time).
- Backend failures are `InfrastructureError`; a log group that does not exist yet (no
  worker has logged) reads as no lines.

`parse_line` turns one Powertools JSON line into a `LogLine` (None for a line of another
run, or one that is not a record: Lambda's START/END/REPORT lines, EMF metric blobs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from durable.errors import InputError

# The most lines one read returns, and the default.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# A cursor longer than this is not one of ours (its hashes are 10 characters each).
MAX_CURSOR_CHARS = 16384
_HASH_CHARS = 10

# Keys Powertools' Logger adds from the Lambda context, the same for every line of an
# invocation (`durable dev`'s console hides them too).
LAMBDA_CONTEXT_KEYS = frozenset(
    {
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "sampling_rate",
        "location",
    }
)
# Keys of a record that have columns of their own, or are the Lambda context's: not the
# record's data.
_OWN_KEYS = LAMBDA_CONTEXT_KEYS | {
    "level",
    "message",
    "timestamp",
    "run_id",
    "task_id",
    "attempt",
    "step",
    "logger",
}


class InvalidLogCursorError(InputError):
    """A logs cursor that is not a `next_cursor` this API returned."""

    code = "invalid_cursor"


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line a run logged: `logger` is "durable" for `ctx.logger`, else the stdlib
    logger's name; `data` holds the record's own extra keys (None when it has none)."""

    at: datetime
    level: str
    message: str
    step: str | None
    attempt: int | None
    logger: str
    data: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """The API's shape (`GET /runs/{id}/logs`)."""
        return {
            "at": self.at.isoformat(),
            "level": self.level,
            "message": self.message,
            "step": self.step,
            "attempt": self.attempt,
            "logger": self.logger,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class LogPage:
    """Lines of one run, oldest first, and where the next read starts. `more`: the read
    stopped before the end of what is there (`limit` reached with lines left, or the
    search cut short), so a reader asks again at once rather than after a pause."""

    run_id: str
    lines: list[LogLine]
    next_cursor: str
    more: bool = False


class RunLogSource(Protocol):
    """Reads the lines a run logged (see the module docstring for the contract)."""

    def read(
        self,
        run_id: str,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        since: datetime | None = None,
    ) -> LogPage:
        """Up to `limit` lines of `run_id` after `cursor`; `since` (the run's creation)
        bounds the search when there is no cursor yet."""
        ...


# -- the cursor -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """How far a reader got: every event before `millis`, and those at `millis` whose
    hashes are in `seen`. `millis` None: nothing read yet."""

    millis: int | None = None
    seen: frozenset[str] = field(default_factory=frozenset)

    def encode(self) -> str:
        body = {"v": 1, "t": self.millis, "s": sorted(self.seen)}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str | None) -> Position:
        if cursor is None:
            return cls()
        invalid = InvalidLogCursorError("cursor is not a next_cursor of this run's logs")
        if not cursor or len(cursor) > MAX_CURSOR_CHARS:
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            body = json.loads(raw)
        except (ValueError, binascii.Error):
            raise invalid from None
        if not isinstance(body, dict) or body.get("v") != 1:
            raise invalid
        millis, seen = body.get("t"), body.get("s")
        valid_millis = millis is None or (
            isinstance(millis, int) and not isinstance(millis, bool) and millis >= 0
        )
        if not valid_millis or not isinstance(seen, list):
            raise invalid
        if not all(isinstance(item, str) and len(item) == _HASH_CHARS for item in seen):
            raise invalid
        if millis is None and seen:
            raise invalid
        return cls(millis, frozenset(seen))


def event_hash(event_id: str) -> str:
    """A short stand-in for an event id in a cursor (CloudWatch's ids are 56 digits)."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:_HASH_CHARS]


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event as a backend holds it: when, its id, the line."""

    millis: int
    event_id: str
    message: str


def collect(
    run_id: str, events: Iterable[RawEvent], position: Position, limit: int
) -> tuple[list[LogLine], Position, bool]:
    """Lines of `run_id` from `events` (in timestamp order) after `position`, at most
    `limit`; the position after the last event consumed (ours or another run's); and
    whether a line of the run was left for the next read."""
    lines: list[LogLine] = []
    left = False
    millis, seen = position.millis, set(position.seen)
    for event in events:
        digest = event_hash(event.event_id)
        if millis is not None and (
            event.millis < millis or (event.millis == millis and digest in seen)
        ):
            continue  # returned before
        line = parse_line(event.message, run_id, event.millis)
        if line is not None:
            if len(lines) >= limit:
                left = True
                break
            lines.append(line)
        if event.millis != millis:
            millis, seen = event.millis, set()
        seen.add(digest)
    return lines, Position(millis, frozenset(seen)), left


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


# -- lines ------------------------------------------------------------------------------


def parse_line(message: str, run_id: str, millis: int) -> LogLine | None:
    """The `LogLine` of a Powertools JSON line of exactly `run_id`; None for anything else."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("run_id") != run_id:
        return None
    return line_of(record, millis)


def line_of(record: Mapping[str, Any], millis: int) -> LogLine:
    """A record (a Powertools line, decoded) as a `LogLine` stamped at `millis`."""
    message = record.get("message", "")
    attempt = record.get("attempt")
    step = record.get("step")
    data = {key: value for key, value in record.items() if key not in _OWN_KEYS}
    return LogLine(
        at=datetime.fromtimestamp(millis / 1000, tz=UTC),
        level=str(record.get("level", "INFO")),
        message=message if isinstance(message, str) else json.dumps(message, default=str),
        step=step if isinstance(step, str) else None,
        attempt=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
        logger=str(record.get("logger") or "durable"),
        data=data or None,
    )
