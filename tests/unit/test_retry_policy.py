"""RetryPolicy's backoff: exponential, capped at max_delay, and defined for every attempt."""

from __future__ import annotations

from datetime import timedelta

import pytest

from durable import RetryPolicy

HUGE_ATTEMPTS = [48, 60, 1000, 1025, 10**6]


@pytest.mark.parametrize("attempt", HUGE_ATTEMPTS)
def test_a_late_attempt_waits_max_delay_instead_of_overflowing(attempt: int) -> None:
    policy = RetryPolicy(max_attempts=10**7, factor=2.0)

    assert policy.base_delay(attempt) == policy.max_delay
    jittered = policy.delay(attempt, "run:0")
    assert policy.max_delay * (1 - policy.jitter) <= jittered <= policy.max_delay


@pytest.mark.parametrize("attempt", HUGE_ATTEMPTS)
@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy(factor=10.0, max_delay=timedelta(days=365)),
        RetryPolicy(factor=1e300, min_delay=timedelta(microseconds=1)),
        RetryPolicy(min_delay=timedelta(seconds=1), max_delay=timedelta.max),
    ],
    ids=["factor-10", "factor-1e300", "no-cap"],
)
def test_any_policy_gives_a_delay_for_any_attempt(policy: RetryPolicy, attempt: int) -> None:
    assert policy.min_delay <= policy.base_delay(attempt) <= policy.max_delay
    assert policy.delay(attempt, "run:0") <= policy.max_delay


def test_the_backoff_grows_by_factor_until_max_delay() -> None:
    policy = RetryPolicy(
        factor=2.0, min_delay=timedelta(seconds=1), max_delay=timedelta(seconds=60)
    )

    delays = [policy.base_delay(attempt).total_seconds() for attempt in range(1, 10)]

    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_factor_of_one_or_a_zero_min_delay_stays_put() -> None:
    assert RetryPolicy(factor=1.0).base_delay(10**6) == timedelta(seconds=1)
    zero = RetryPolicy(min_delay=timedelta(0), max_delay=timedelta(0))
    assert zero.base_delay(10**6) == timedelta(0)
    assert RetryPolicy(min_delay=timedelta(0)).base_delay(10**6) == timedelta(0)


def test_the_first_attempt_waits_min_delay_never_less() -> None:
    policy = RetryPolicy(min_delay=timedelta(seconds=3))

    assert policy.base_delay(1) == timedelta(seconds=3)
    assert policy.base_delay(0) == timedelta(seconds=3)


def test_the_jitter_is_the_same_for_the_same_key() -> None:
    policy = RetryPolicy()

    assert policy.delay(10**6, "run:3") == policy.delay(10**6, "run:3")
