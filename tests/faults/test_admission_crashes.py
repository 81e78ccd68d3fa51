"""Rate-limited and debounced triggers, crashed at every AWS call of a play.

A play triggers runs as an API caller would (retrying a call that failed, with an
idempotency key for the rate-limited ones: that is how a caller makes a retried trigger
one run), then lets production recover (SQS redelivery, the sweeper every minute). For
each call k of an uncrashed play and each side of it, a fresh environment dies right
there. Every time:

- rate limit (3 a minute, 5 runs triggered at once): exactly 5 runs, all completed, each
  with its own payload, and never more than 3 started in one minute (a crash between a
  place taken and its run stored wastes that place: a run may start a minute later);
- debounce (3 triggers 10 s apart, each within the period): exactly one run, completed
  with the last trigger's payload: no trigger lost, never two pending runs;
- debounce and a rate limit of 1 a minute (4 triggers 20 s apart, each past the 5 s
  period: the second run waits for its minute and takes the third's payload meanwhile):
  every run completed, never two started in one minute, the payloads they ran
  with in the order triggered, the last one with the last trigger's.

And with every message delivered three times and once late (`test_delivery.chaotic`),
rate-limited runs still start at most the limit in a minute, each step once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durable import Context, Queue, RateLimit, RunInfoView, TaskRegistry, task
from durable.faults import Faults, When
from durable.records import RunStatus
from durable.testing import Backend, MotoBackend, TestEnvironment

from .conftest import FULL_SWEEP, Production, crash_sides
from .test_delivery import chaotic

START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
EPOCH_MINUTE = START.replace(second=0)  # the rate windows are whole minutes
LIMIT = 3
RUNS = 5


def registry() -> TaskRegistry:
    made = TaskRegistry()

    @task(id="limited", registry=made, queue=Queue("api", rate_limit=RateLimit(LIMIT, _MINUTE)))
    def limited(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    @task(id="debounced", registry=made, queue=Queue("index", debounce=timedelta(seconds=30)))
    def debounced(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    digest = Queue("digest", debounce=timedelta(seconds=5), rate_limit=RateLimit(1, _MINUTE))

    @task(id="digest", registry=made, queue=digest)
    def digest_task(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    return made


_MINUTE = timedelta(minutes=1)


@contextmanager
def _played(
    backend: Backend, crash: tuple[int, When] | None, moto: MotoBackend | None
) -> Iterator[tuple[TestEnvironment, Production, Faults]]:
    """A fresh environment that dies at `crash` (if any), and production recovering it."""
    faults = Faults()
    with TestEnvironment(
        backend=backend, registry=registry(), faults=faults, moto=moto, start=START
    ) as env:
        if crash is not None:
            faults.crash(*crash)
        yield env, Production(env), faults


def _runs(env: TestEnvironment, faults: Faults) -> list[RunInfoView]:
    """Every run, read without faults, in the order they started."""
    with faults.paused():
        runs = [env.get(run.run_id) for run in env.list(limit=100).runs]
    return sorted(runs, key=lambda run: run.started_at or START)


def _most_in_a_minute(runs: list[RunInfoView]) -> int:
    per_minute = Counter(((run.started_at or START) - EPOCH_MINUTE) // _MINUTE for run in runs)
    return max(per_minute.values())


def _all_completed(runs: list[RunInfoView]) -> bool:
    return all(run.status is RunStatus.COMPLETED for run in runs)


def play_rate(
    backend: Backend, crash: tuple[int, When] | None, moto: MotoBackend | None
) -> dict[str, Any]:
    with _played(backend, crash, moto) as (env, production, faults):
        handles = [
            production.call(lambda n=n: env.trigger("limited", n, idempotency_key=f"r{n}"))
            for n in range(RUNS)
        ]
        ids = [handle.run_id for handle in handles]
        production.run(lambda: ids)
        calls, runs = faults.calls, _runs(env, faults)
    return {
        "calls": calls,
        "runs": len(runs),
        "completed": _all_completed(runs),
        "payloads": sorted(run.result for run in runs),
        "most_in_a_minute": _most_in_a_minute(runs),
    }


def play_debounce(
    backend: Backend, crash: tuple[int, When] | None, moto: MotoBackend | None
) -> dict[str, Any]:
    with _played(backend, crash, moto) as (env, production, faults):
        for n in range(3):
            production.call(lambda n=n: env.trigger("debounced", {"v": n}))
            env.clock.advance(timedelta(seconds=10))
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        calls, runs = faults.calls, _runs(env, faults)
    return {
        "calls": calls,
        "runs": len(runs),
        "completed": _all_completed(runs),
        "results": [run.result for run in runs],
    }


def play_debounce_rate(
    backend: Backend, crash: tuple[int, When] | None, moto: MotoBackend | None
) -> dict[str, Any]:
    with _played(backend, crash, moto) as (env, production, faults):
        for n in range(4):
            production.call(lambda n=n: env.trigger("digest", n))
            production.advance(timedelta(seconds=20))
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        calls, runs = faults.calls, _runs(env, faults)
    results = [run.result for run in runs]
    return {
        "calls": calls,
        "completed": _all_completed(runs),
        "most_in_a_minute": _most_in_a_minute(runs),
        "in_order": results == sorted(set(results)),
        "last": results[-1],
    }


RATE_EXPECTED = {
    "runs": RUNS,
    "completed": True,
    "payloads": list(range(RUNS)),
    "most_in_a_minute": LIMIT,
}
DEBOUNCE_EXPECTED = {"runs": 1, "completed": True, "results": [{"v": 2}]}
DEBOUNCE_RATE_EXPECTED = {"completed": True, "most_in_a_minute": 1, "in_order": True, "last": 3}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


def _sweep(play: Any, expected: dict[str, Any], backend: Backend, moto: MotoBackend) -> None:
    shared = moto if backend == "moto" else None
    reference = play(backend, None, shared)
    assert {key: reference[key] for key in expected} == expected
    tried = 0
    problems = []
    for call in range(1, reference["calls"] + 1):
        for when in crash_sides(call, backend):
            outcome = play(backend, (call, when), shared)
            tried += 1
            seen = {key: outcome[key] for key in expected}
            if seen != expected:
                problems.append(f"crash {when} call {call}: {seen}")
    print(f"\n{play.__name__} ({backend}): calls={reference['calls']} tried={tried}")
    assert problems == []
    assert tried >= reference["calls"] > 0


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_crash_at_any_call_of_rate_limited_triggers_makes_each_run_once_within_the_limit(
    backend: Backend, moto: MotoBackend
) -> None:
    _sweep(play_rate, RATE_EXPECTED, backend, moto)


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_crash_at_any_call_of_debounced_triggers_makes_one_run_with_the_last_payload(
    backend: Backend, moto: MotoBackend
) -> None:
    _sweep(play_debounce, DEBOUNCE_EXPECTED, backend, moto)


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        # About 75 s on moto: in `make faults-sweep`; the calls it makes are the rate and
        # debounce sweeps' (above, on moto in `make test`), and tests/unit/test_admission.py
        # plays it uncrashed on moto.
        pytest.param("moto", marks=pytest.mark.skipif(not FULL_SWEEP, reason="faults-sweep")),
    ],
)
def test_a_crash_at_any_call_of_debounced_rate_limited_triggers_starts_one_run_a_minute(
    backend: Backend, moto: MotoBackend
) -> None:
    _sweep(play_debounce_rate, DEBOUNCE_RATE_EXPECTED, backend, moto)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duplicate_and_late_deliveries_never_start_more_than_the_limit_in_a_minute(
    seed: int,
) -> None:
    # Every message three times within seconds and once up to 15 minutes late: the runs of
    # a window start within it, a late copy finds its run started (or ended) and stops.
    with TestEnvironment(registry=registry(), start=START) as env:
        chaotic(env, seed)
        production = Production(env)
        handles = [env.trigger("limited", n) for n in range(4 * LIMIT)]
        production.run(lambda: [handle.run_id for handle in handles])
        env.advance(timedelta(minutes=30))  # every late copy is delivered
        runs = [env.get(handle.run_id) for handle in handles]
        assert [run.status for run in runs] == [RunStatus.COMPLETED] * len(runs)
        assert sorted(run.result for run in runs) == list(range(4 * LIMIT))
        assert all(len(env.history(run.run_id)) == 1 for run in runs)  # one step, once
        assert _most_in_a_minute(runs) == LIMIT
        assert len(env.list(limit=100).runs) == 4 * LIMIT


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duplicate_and_late_deliveries_start_one_debounced_run_a_minute(seed: int) -> None:
    # A debounced run takes its place when it comes to start: three copies of its start
    # message at once may each take one (places wasted), never start it twice.
    with TestEnvironment(registry=registry(), start=START) as env:
        chaotic(env, seed)
        production = Production(env)
        for n in range(9):
            production.call(lambda n=n: env.trigger("digest", n))
            production.advance(timedelta(seconds=20))
        production.run(lambda: [run.run_id for run in env.list(limit=100).runs])
        env.advance(timedelta(minutes=30))  # every late copy is delivered
        runs = _runs(env, Faults())
        assert _all_completed(runs)
        assert all(len(env.history(run.run_id)) == 1 for run in runs)  # one step, once
        assert _most_in_a_minute(runs) == 1
        results = [run.result for run in runs]
        assert results == sorted(set(results)) and results[-1] == 8
