"""`durable replay` of runs repaired in place: retry boundaries split the recorded attempts,
audit entries are not operations (`durable.replayer`)."""

from __future__ import annotations

from typing import Any

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.replayer import ReplayStatus, replay_run
from durable.services.audit import record_action
from durable.testing import TestEnvironment

BROKEN = {"yes": True}


def _effect(name: str) -> str:
    if name == "b" and BROKEN["yes"]:
        raise RuntimeError("b is broken")
    return name


def _steps(ctx: Context, payload: Any) -> list[str]:
    return [ctx.step(name, _effect, name, retry=RetryPolicy(max_attempts=1)) for name in ("a", "b")]


def _renamed(ctx: Context, payload: Any) -> list[str]:
    return [ctx.step(name, _effect, name, retry=RetryPolicy(max_attempts=1)) for name in ("a", "c")]


def _retried_run(env: TestEnvironment) -> str:
    BROKEN["yes"] = True
    run = env.trigger("steps")
    assert env.run_until_complete(run.run_id).status == RunStatus.FAILED
    record_action(env.store, env.clock, run.run_id, "note", "anonymous")  # not an operation
    BROKEN["yes"] = False
    env.client.retry(run.run_id)
    assert env.run_until_complete(run.run_id).status == RunStatus.COMPLETED
    return run.run_id


def _replay(env: TestEnvironment, run_id: str, code: Any) -> Any:
    registry = TaskRegistry()
    task(id="steps", registry=registry, retry=RetryPolicy(max_attempts=1))(code)
    run = env.store.get_run(run_id)
    assert run is not None
    return replay_run(run, env.store.load_history(run_id), env.codec, registry)


def test_a_retried_run_replays_clean_on_its_own_code(registry: TaskRegistry) -> None:
    task(id="steps", registry=registry, retry=RetryPolicy(max_attempts=1))(_steps)
    with TestEnvironment(registry=registry) as env:
        run_id = _retried_run(env)
        report = _replay(env, run_id, _steps)
        assert report.status == ReplayStatus.OK
        assert report.positions_replayed == 2


def test_a_retried_run_against_changed_code_diverges_in_the_attempt_it_changed(
    registry: TaskRegistry,
) -> None:
    task(id="steps", registry=registry, retry=RetryPolicy(max_attempts=1))(_steps)
    with TestEnvironment(registry=registry) as env:
        run_id = _retried_run(env)
        report = _replay(env, run_id, _renamed)
        assert report.status == ReplayStatus.DIVERGED
        assert report.position == 1
        assert report.attempt == 1  # the attempt the retry ended: replayed on its own log
        assert report.recorded is not None and report.recorded.name == "b"
