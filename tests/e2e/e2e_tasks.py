"""Tasks for the end-to-end tests (`durable dev --tasks tests.e2e.e2e_tasks`).

Steps that must be observable from outside record each execution as a line in a file under
the directory the payload names, so a test can count how often a step really ran. Crashes
and hangs happen only the first time (a marker file), so the redelivered run gets through.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from durable import Context, NonRetryableError, RetryPolicy, task


def record(directory: str, name: str) -> int:
    """Append one line to `<directory>/<name>.count`; how many lines it now holds."""
    path = Path(directory) / f"{name}.count"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    return len(path.read_text(encoding="utf-8").splitlines())


def executions(directory: str | Path, name: str) -> int:
    """How often the step that records `name` ran (read by the tests)."""
    path = Path(directory) / f"{name}.count"
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def first_time(directory: str, name: str) -> bool:
    """True exactly once per directory and name (creates a marker file)."""
    try:
        (Path(directory) / f"{name}.marker").touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


class Greeting(BaseModel):
    name: str = Field(min_length=1)


class InDirectory(BaseModel):
    dir: str


class SlowSteps(BaseModel):
    dir: str
    steps: int = Field(ge=1)
    seconds: float = Field(ge=0)


class Nap(BaseModel):
    seconds: float = Field(ge=0)


class Wait(BaseModel):
    timeout_seconds: float = 60.0


@task(id="e2e-hello")
def hello(ctx: Context, payload: Greeting) -> dict[str, Any]:
    greeting: str = ctx.step("greet", lambda name: f"hello, {name}", payload.name)
    return {"greeting": greeting}


def _crash_the_first_time(directory: str) -> str:
    record(directory, "crash")
    if first_time(directory, "crash"):
        os._exit(1)  # the whole invocation process dies, as in a power cut
    return "survived"


@task(id="e2e-crash-once")
def crash_once(ctx: Context, payload: InDirectory) -> dict[str, Any]:
    first: int = ctx.step("first", record, payload.dir, "first")
    survived: str = ctx.step("crash", _crash_the_first_time, payload.dir)
    after: int = ctx.step("after", record, payload.dir, "after")
    return {"first": first, "crash": survived, "after": after}


def _hang_the_first_time(directory: str) -> str:
    record(directory, "hang")
    if first_time(directory, "hang"):
        time.sleep(120)  # far beyond the invocation time limit: the dev server kills us
    return "finished"


@task(id="e2e-hang-once")
def hang_once(ctx: Context, payload: InDirectory) -> dict[str, Any]:
    first: int = ctx.step("first", record, payload.dir, "first")
    finished: str = ctx.step("hang", _hang_the_first_time, payload.dir)
    return {"first": first, "hang": finished}


def _slow_step(directory: str, name: str, seconds: float) -> int:
    time.sleep(seconds)
    return record(directory, name)


@task(id="e2e-slow-steps")
def slow_steps(ctx: Context, payload: SlowSteps) -> list[int]:
    return [
        ctx.step(f"step-{index}", _slow_step, payload.dir, f"step-{index}", payload.seconds)
        for index in range(payload.steps)
    ]


@task(id="e2e-sleep")
def sleeper(ctx: Context, payload: Nap) -> dict[str, Any]:
    before = ctx.now()
    ctx.sleep("nap", timedelta(seconds=payload.seconds))
    after = ctx.now()
    return {"slept": (after - before).total_seconds()}


@task(id="e2e-wait-event")
def wait_event(ctx: Context, payload: Wait) -> dict[str, Any]:
    data = ctx.wait_for_event("approval", timeout=timedelta(seconds=payload.timeout_seconds))
    return {"received": data}


class Chain(BaseModel):
    dir: str
    name: str
    nap_seconds: float = Field(default=1.0, ge=0)
    step_seconds: float = Field(default=0.2, ge=0)


def _timed_step(directory: str, name: str, seconds: float) -> float:
    """Record when the step started (a line in `<name>.times`), then take `seconds`."""
    started = time.time()
    with (Path(directory) / f"{name}.times").open("a", encoding="utf-8") as handle:
        handle.write(f"{started}\n")
    time.sleep(seconds)
    return started


@task(id="e2e-chain")
def chain(ctx: Context, payload: Chain) -> dict[str, Any]:
    """Step, sleep, step, wait for "go", step: each step's starts are on disk."""
    where, name, seconds = payload.dir, payload.name, payload.step_seconds
    ctx.step("first", _timed_step, where, f"{name}.first", seconds)
    ctx.sleep("nap", timedelta(seconds=payload.nap_seconds))
    ctx.step("second", _timed_step, where, f"{name}.second", seconds)
    go = ctx.wait_for_event("go", timeout=timedelta(minutes=10))
    ctx.step("third", _timed_step, where, f"{name}.third", seconds)
    return {"go": go}


def _hand_over_token(directory: str, token: str) -> None:
    (Path(directory) / "callback.token").write_text(token)


@task(id="e2e-callback")
def callback(ctx: Context, payload: InDirectory) -> dict[str, Any]:
    """Wait for a callback whose token it writes to `<dir>/callback.token`."""
    data = ctx.wait_for_callback("done", lambda token: _hand_over_token(payload.dir, token))
    return {"received": data}


@task(id="e2e-fail")
def fail(ctx: Context, payload: Any) -> None:
    ctx.step("refuse", _refuse)


def _refuse() -> None:
    raise NonRetryableError("refused on purpose")


@task(id="e2e-two-approvals")
def two_approvals(ctx: Context, payload: Any) -> list[Any]:
    """Waits for two `approval` events (the sample events' seeded run)."""
    return [ctx.wait_for_event("approval"), ctx.wait_for_event("approval")]


# -- orchestration primitives: heartbeats and at-most-once steps across a real crash ----


class Items(BaseModel):
    dir: str
    items: int = Field(default=10, ge=1)
    crash_at: int = Field(default=5, ge=0)


def _work_through_items(ctx: Context, directory: str, items: int, crash_at: int) -> dict[str, int]:
    start: int = ctx.heartbeat_details or 0  # where the last attempt's heartbeats got to
    for index in range(start, items):
        record(directory, f"item-{index}")
        if index == crash_at and first_time(directory, "heartbeat-crash"):
            os._exit(1)  # the invocation dies in the middle of the step
        ctx.heartbeat(index + 1)
    return {"resumed_from": start, "items": items}


@task(id="e2e-heartbeat", retry=RetryPolicy(max_attempts=1))
def heartbeat_through_a_crash(ctx: Context, payload: Items) -> dict[str, int]:
    result: dict[str, int] = ctx.step(
        "work",
        _work_through_items,
        ctx,
        payload.dir,
        payload.items,
        payload.crash_at,
        heartbeat_timeout=timedelta(seconds=2),
        retry=RetryPolicy(max_attempts=2, min_delay=timedelta(0), max_delay=timedelta(0)),
    )
    return result


def _side_effect_then_crash(directory: str) -> str:
    record(directory, "side-effect")
    if first_time(directory, "at-most-once-crash"):
        os._exit(1)  # after the side effect, before the step could record it
    return "done"


@task(id="e2e-at-most-once", retry=RetryPolicy(max_attempts=1))
def at_most_once(ctx: Context, payload: InDirectory) -> str:
    done: str = ctx.step(
        "side-effect", _side_effect_then_crash, payload.dir, semantics="at_most_once"
    )
    return done


# -- fan-out: a map whose children sleep, to be cancelled while they do ------------------


class Naps(BaseModel):
    naps: int = Field(ge=1, le=1000)
    seconds: float = Field(ge=0)
    max_concurrency: int = Field(default=50, ge=1)
    tolerated_failures: int = Field(default=0, ge=0)


@task(id="e2e-map-naps")
def map_naps(ctx: Context, payload: Naps) -> list[Any]:
    """One `e2e-sleep` child run per nap: each child sleeps (durably) for `seconds`."""
    return ctx.map(
        "e2e-sleep",
        [Nap(seconds=payload.seconds)] * payload.naps,
        max_concurrency=payload.max_concurrency,
        tolerated_failures=payload.tolerated_failures,
    )


# -- the dashboard's run page: step retries with backoff, a child run ---------------------


class Flaky(BaseModel):
    dir: str
    failures: int = Field(default=2, ge=0, le=5)


def _flaky_service(directory: str, failures: int) -> dict[str, int]:
    """Fails its first `failures` calls (counted in `<dir>/flaky.count`), then answers."""
    calls = record(directory, "flaky")
    logging.getLogger("e2e.flaky").info("calling the flaky service (call %d)", calls)
    if calls <= failures:
        raise ConnectionError(f"the flaky service refused call {calls} of {failures}")
    return {"calls": calls}


@task(id="e2e-flaky-step")
def flaky_step(ctx: Context, payload: Flaky) -> dict[str, int]:
    """One step that fails twice and succeeds on its third attempt (1 s, then 2 s backoff)."""
    ctx.logger.info("calling a service that fails first", failures=payload.failures)
    retry = RetryPolicy(max_attempts=payload.failures + 1, min_delay=timedelta(seconds=1), jitter=0)
    result: dict[str, int] = ctx.step(
        "call-flaky-service", _flaky_service, payload.dir, payload.failures, retry=retry
    )
    return result


@task(id="e2e-parent")
def parent(ctx: Context, payload: Greeting) -> dict[str, Any]:
    """Invokes `e2e-hello` as a child run and returns its result."""
    return {"child": ctx.invoke("e2e-hello", {"name": payload.name})}


@task(id="e2e-chatty")
def chatty(ctx: Context, payload: Nap) -> str:
    """Logs a line, naps (the run stays live), logs another: the run page follows its log."""
    ctx.logger.info("before the nap", seconds=payload.seconds)
    ctx.step("note", lambda: "noted")
    ctx.sleep("nap", timedelta(seconds=payload.seconds))
    ctx.logger.info("after the nap")
    return "rested"


_task_log = logging.getLogger(__name__)


def _log_in_step(ctx: Context) -> str:
    _task_log.info("stdlib in a step")
    ctx.logger.info("ctx.logger in a step", detail="x")
    return "logged"


@task(id="e2e-logs")
def logs_lines(ctx: Context, payload: Nap) -> str:
    """Logs with ctx.logger and with the standard logging, before and after a nap."""
    ctx.logger.info("before the nap", seconds=payload.seconds)
    _task_log.warning("stdlib before the nap")
    ctx.sleep("nap", timedelta(seconds=payload.seconds))
    result: str = ctx.step("log", _log_in_step, ctx)
    _task_log.info("stdlib after the nap")
    return result


def _fails_until_fixed(directory: str) -> str:
    record(directory, "second")
    if not (Path(directory) / "fixed").exists():
        raise RuntimeError("not fixed yet")
    return "fixed"


@task(id="e2e-repairable", retry=RetryPolicy(max_attempts=1))
def repairable(ctx: Context, payload: InDirectory) -> dict[str, Any]:
    """Fails at its second step until `<dir>/fixed` exists: retried, rerun and forked."""
    first = ctx.step("first", record, payload.dir, "first")
    second = ctx.step("second", _fails_until_fixed, payload.dir, retry=RetryPolicy(max_attempts=1))
    return {"first": first, "second": second}


@task(id="e2e-divergent", retry=RetryPolicy(max_attempts=1))
def divergent(ctx: Context, payload: InDirectory) -> str:
    """Names its step from `<dir>/step-name`, read again at every replay: a test that rewrites
    the file while the run naps makes its replay diverge (the run is held), and writing the
    old name back is the fix a resume replays with."""
    name = (Path(payload.dir) / "step-name").read_text(encoding="utf-8").strip()
    ctx.step(name, record, payload.dir, name)
    ctx.sleep("nap", timedelta(seconds=3))
    return name
