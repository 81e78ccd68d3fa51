"""Retry policies: exponential backoff with deterministic jitter.

delay(attempt) = min(max_delay, min_delay * factor ** (attempt - 1)), then shortened by up
to `jitter` of itself. The jitter is drawn from a hash of (run, operation, attempt), so it
is the same on every replay and needs no randomness source; the retry time is recorded in
the log anyway. The power is never computed once it would pass `max_delay` (compared in
log space), so any attempt number, 10**6 included, gives `max_delay` instead of
overflowing a float or a timedelta.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import timedelta

from durable.errors import NonRetryableError, StepFailedError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon to try again. `max_attempts` counts the first try."""

    max_attempts: int = 3
    factor: float = 2.0
    min_delay: timedelta = timedelta(seconds=1)
    max_delay: timedelta = timedelta(seconds=60)
    jitter: float = 0.2
    non_retryable: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts counts the first try: it must be at least 1")
        if self.factor < 1:
            raise ValueError("factor must be at least 1")
        if self.min_delay < timedelta(0) or self.max_delay < self.min_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def base_delay(self, attempt: int) -> timedelta:
        """The delay before attempt `attempt + 1`, without jitter."""
        exponent = max(attempt - 1, 0)  # attempts count from 1: never below min_delay
        low = self.min_delay.total_seconds()
        high = self.max_delay.total_seconds()
        if low == 0 or self.factor == 1:
            return self.min_delay
        # min_delay * factor**exponent >= max_delay  <=>  exponent * ln(factor) >= ln(high / low):
        # decided before the power, which overflows a float past ~2**1024 (and a timedelta
        # far sooner, near attempt 48 with factor 2).
        if exponent * math.log(self.factor) >= math.log(high / low):
            return self.max_delay
        seconds = low * self.factor**exponent
        if seconds >= high:  # rounding at the boundary
            return self.max_delay
        return timedelta(seconds=seconds)

    def delay(self, attempt: int, jitter_key: str) -> timedelta:
        """The delay after failed attempt `attempt`, jittered deterministically by `jitter_key`."""
        base = self.base_delay(attempt)
        digest = hashlib.blake2b(f"{jitter_key}:{attempt}".encode(), digest_size=8).digest()
        fraction = int.from_bytes(digest, "big") / 2**64
        return base * (1 - self.jitter * fraction)

    def allows_retry(self, attempt: int, error: BaseException) -> bool:
        """Whether a failure of attempt `attempt` with `error` may be tried again."""
        return attempt < self.max_attempts and not is_non_retryable(error, self)


def is_non_retryable(error: BaseException, policy: RetryPolicy | None = None) -> bool:
    """True for NonRetryableError, steps that failed non-retryably, and listed types."""
    if isinstance(error, NonRetryableError):
        return True
    if isinstance(error, StepFailedError) and error.non_retryable:
        return True
    return policy is not None and isinstance(error, policy.non_retryable)


NO_RETRY = RetryPolicy(max_attempts=1)
DEFAULT_TASK_RETRY = RetryPolicy()
