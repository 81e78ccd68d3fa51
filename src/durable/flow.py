"""Flow control declared in code: `Queue` (concurrency per key, rate limit, size limit,
debounce) and `RateLimit`, with the trigger-time options checked here.

    @task(id="summarize", queue=Queue("llm", concurrency=5, rate_limit=RateLimit(10, minute)))

Every task runs in a queue: its own (named after the task, no limit) unless it names one,
and several tasks may share a queue by giving the same `Queue` (the same name must always
carry the same settings: the registry refuses two different queues under one name).
At trigger, a run may name a `concurrency_key` (a tenant, a user: the limits then apply
per key, each key with its own slots and its own start budget), a `priority` (higher runs
first among the runs waiting in the same queue and key) and a `ttl` (a run not started
within it ends CANCELLED, saying so).

This module only declares and validates; the machinery that enforces the declarations
lives in the services and the worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from durable.errors import InputError

__all__ = [
    "MAX_CONCURRENCY",
    "MAX_PRIORITY",
    "Queue",
    "RateLimit",
    "checked_concurrency_key",
    "checked_priority",
    "checked_ttl",
]

QUEUE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
CONCURRENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:/=@+\-]{1,128}$")
MAX_CONCURRENCY = 1000  # slots per key: the holders of a key are kept in one item
MAX_PRIORITY = 100
MAX_TTL = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` runs of a queue start per `period`, per concurrency key. Runs over
    it wait for the next period: none is dropped."""

    limit: int
    period: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1:
            raise ValueError(f"rate limit: limit must be a positive integer, not {self.limit!r}")
        if not isinstance(self.period, timedelta) or self.period < timedelta(seconds=1):
            raise ValueError(f"rate limit: period must be at least a second, not {self.period!r}")


@dataclass(frozen=True, slots=True)
class Queue:
    """Where a task's runs wait to start, and the limits they start under.

    - `concurrency`: runs of the queue executing at once, per concurrency key (None: no
      limit). A run holds a slot while an invocation executes it.
    - `release_on_wait`: a run gives its slot back while it sleeps or waits (an event, a
      child, a callback) and takes one again to go on; False keeps it for the whole run.
    - `rate_limit`: at most so many starts per period, per key.
    - `max_size`: at most so many runs waiting for a slot per key; a trigger beyond it is
      refused (HTTP 429), nothing stored.
    - `debounce`: a trigger with the same concurrency key within this period replaces the
      payload of the run still pending and delays its start by the period again. With a
      `rate_limit` too, the run takes its place in the rate windows as it comes to start,
      and triggers meanwhile replace its payload while it waits for its window.
    """

    name: str
    concurrency: int | None = None
    release_on_wait: bool = True
    rate_limit: RateLimit | None = None
    max_size: int | None = None
    debounce: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not QUEUE_NAME_PATTERN.match(self.name):
            raise ValueError(f"queue name {self.name!r}: 1 to 64 characters of A-Za-z0-9_.-")
        if self.concurrency is not None and not _positive(self.concurrency, MAX_CONCURRENCY):
            raise ValueError(
                f"queue {self.name!r}: concurrency must be 1 to {MAX_CONCURRENCY} (or None)"
            )
        if self.max_size is not None and not _positive(self.max_size, 10**9):
            raise ValueError(f"queue {self.name!r}: max_size must be a positive integer")
        if self.debounce is not None and (
            not isinstance(self.debounce, timedelta) or self.debounce < timedelta(seconds=1)
        ):
            raise ValueError(f"queue {self.name!r}: debounce must be at least a second")

    @property
    def limited(self) -> bool:
        """Whether anything holds a run of this queue back."""
        return (
            self.concurrency is not None
            or self.rate_limit is not None
            or self.max_size is not None
            or self.debounce is not None
        )


def _positive(value: object, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most


def checked_concurrency_key(key: str | None) -> str | None:
    """A trigger's concurrency key, or an `InputError` saying what it may be."""
    if key is None:
        return None
    if not isinstance(key, str) or not CONCURRENCY_KEY_PATTERN.match(key):
        raise InputError("concurrency_key must be 1 to 128 characters of A-Za-z0-9_.:/=@+-")
    return key


def checked_priority(priority: int) -> int:
    """A trigger's priority (0, the default, to `MAX_PRIORITY`; higher starts first)."""
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise InputError("priority must be an integer")
    if not 0 <= priority <= MAX_PRIORITY:
        raise InputError(f"priority must be 0 to {MAX_PRIORITY}")
    return priority


def checked_ttl(ttl: timedelta | None) -> timedelta | None:
    """A trigger's ttl: how long the run may wait to start (a second to a year)."""
    if ttl is None:
        return None
    if not isinstance(ttl, timedelta) or not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise InputError("ttl must be a second to 365 days")
    return ttl
