"""Orchestration primitives: step ids, timeouts, heartbeats, compensation, patching, child
runs and callbacks, on the in-memory backend and the virtual clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import (
    Context,
    RetryPolicy,
    RunStatus,
    StepFailedError,
    TaskRegistry,
    WaitTimeoutError,
    task,
)
from durable.errors import (
    CallbackAlreadyCompletedError,
    CallbackFailedError,
    CallbackNotFoundError,
    ChildRunFailedError,
)
from durable.testing import SimulatedCrash, TestEnvironment

# -- step ids, timeouts and heartbeats -------------------------------------------------


def test_the_step_id_is_the_same_on_every_attempt(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    seen: list[str] = []
    outside: list[str] = []

    @task(id="charge", registry=registry)
    def charge(ctx: Context, payload: None) -> str:
        try:
            outside.append(ctx.step_id)
        except RuntimeError as error:
            outside.append(str(error))

        def call_provider() -> str:
            seen.append(ctx.step_id)
            if len(seen) < 3:
                raise ConnectionError("provider timed out")
            return "ch_1"

        return ctx.step("charge", call_provider, retry=RetryPolicy(max_attempts=5))

    run = env.trigger("charge")
    info = env.run_until_complete(run.run_id)

    assert info.result == "ch_1"
    assert seen == [f"{run.run_id}:charge:0"] * 3
    assert outside[0] == "ctx.step_id is only available inside a running step"


def test_a_step_that_outlives_its_timeout_is_a_failed_attempt(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    durations = iter([timedelta(seconds=90), timedelta(seconds=10)])
    calls: list[int] = []

    @task(id="slow", registry=registry)
    def slow(ctx: Context, payload: None) -> int:
        def work() -> int:
            calls.append(1)
            env.clock.advance(next(durations))  # the step takes this long
            return len(calls)

        return ctx.step(
            "work", work, timeout=timedelta(seconds=60), retry=RetryPolicy(max_attempts=2)
        )

    run = env.trigger("slow")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == 2
    kinds = [(entry.kind, entry.attempt) for entry in env.history(run.run_id)]
    assert kinds == [
        ("step_started", 1),
        ("step_failed", 1),
        ("step_started", 2),
        ("step_completed", 2),
    ]
    failure = env.history(run.run_id)[1].error
    assert failure is not None and failure.type == "StepTimeoutError"


def test_a_step_cut_off_with_its_invocation_consumes_its_retry_budget(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls: list[int] = []

    @task(id="doomed-step", registry=registry, retry=RetryPolicy(max_attempts=1))
    def doomed(ctx: Context, payload: None) -> None:
        def dies() -> None:
            calls.append(1)
            raise SimulatedCrash("Lambda's limit")

        ctx.step("dies", dies, timeout=timedelta(minutes=1), retry=RetryPolicy(max_attempts=3))

    run = env.trigger("doomed-step")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert len(calls) == 3  # never more than its budget
    assert info.error is not None and info.error.type == "StepTimeoutError"


def test_heartbeat_details_reach_the_next_attempt(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    progress: list[Any] = []

    @task(id="long-import", registry=registry)
    def long_import(ctx: Context, payload: None) -> int:
        def import_rows() -> int:
            start = ctx.heartbeat_details or 0
            progress.append(start)
            for row in range(start, 10):
                ctx.heartbeat(row)
                if row == 6 and start == 0:
                    raise SimulatedCrash("the worker died")
            return 10

        return ctx.step(
            "import",
            import_rows,
            heartbeat_timeout=timedelta(seconds=30),
            retry=RetryPolicy(max_attempts=3),
        )

    run = env.trigger("long-import")
    env.run_until_idle()
    # the dead invocation's lease ran only until its last heartbeat + 30 s
    env.advance(timedelta(seconds=31))
    assert env.sweep() == 1
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert progress == [0, 6]
    kinds = [entry.kind for entry in env.history(run.run_id)]
    assert "step_heartbeat" in kinds
    failed = [entry for entry in env.history(run.run_id) if entry.kind == "step_failed"]
    assert failed[0].error is not None and failed[0].error.type == "HeartbeatTimeoutError"


# -- compensation ----------------------------------------------------------------------


def test_compensations_run_in_reverse_when_the_run_fails_for_good(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    undone: list[str] = []

    @task(id="trip", registry=registry, retry=RetryPolicy(max_attempts=2))
    def trip(ctx: Context, payload: None) -> None:
        ctx.step("book-flight", lambda: "FL-1", compensate=lambda ref: undone.append(ref))
        ctx.step("book-hotel", lambda: "HO-2", compensate=lambda ref: undone.append(ref))
        ctx.step("no-undo", lambda: "x")
        ctx.step("book-car", _no_cars)

    run = env.trigger("trip")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert info.error is not None and info.error.type == "LookupError"
    assert undone == ["HO-2", "FL-1"]
    names = [entry.name for entry in env.history(run.run_id) if entry.kind == "step_completed"]
    assert names[-2:] == ["compensate:book-hotel", "compensate:book-flight"]


def _no_cars() -> None:
    raise LookupError("no cars left")


# -- patching --------------------------------------------------------------------------


def test_patched_serves_runs_started_before_and_after_a_change(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    paths: list[tuple[str, str]] = []

    def v1(ctx: Context, payload: str) -> str:
        ctx.sleep("wait", timedelta(hours=1))
        ctx.step("old-charge", lambda: paths.append((payload, "old")))
        return "v1"

    def v2(ctx: Context, payload: str) -> str:
        ctx.sleep("wait", timedelta(hours=1))
        if ctx.patched("new-charge"):
            ctx.step("new-charge", lambda: paths.append((payload, "new")))
        else:
            ctx.step("old-charge", lambda: paths.append((payload, "old")))
        return "v2"

    task(id="charger", registry=registry)(v1)
    before = env.trigger("charger", "before")
    env.run_until_idle()
    # given: v1 ran up to its sleep; then v2 is deployed
    redeployed = TaskRegistry()
    task(id="charger", registry=redeployed)(v2)
    env.worker.registry = redeployed
    env.client.registry = redeployed
    # the old run already passed the patch point in v1 terms? No: it reaches it after the sleep.
    after = env.trigger("charger", "after")
    env.run_until_complete(before.run_id)
    env.run_until_complete(after.run_id)

    assert sorted(paths) == [("after", "new"), ("before", "new")]


def test_patched_keeps_the_old_path_for_a_run_recorded_past_the_change(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    paths: list[str] = []

    def v1(ctx: Context, payload: None) -> None:
        ctx.step("old-charge", lambda: paths.append("old"))
        ctx.sleep("wait", timedelta(hours=1))

    def v2(ctx: Context, payload: None) -> None:
        if ctx.patched("new-charge"):
            ctx.step("new-charge", lambda: paths.append("new"))
        else:
            ctx.step("old-charge", lambda: paths.append("old"))
        ctx.sleep("wait", timedelta(hours=1))

    task(id="charger", registry=registry)(v1)
    old = env.trigger("charger")
    env.run_until_idle()
    redeployed = TaskRegistry()
    task(id="charger", registry=redeployed)(v2)
    env.worker.registry = redeployed
    env.client.registry = redeployed
    info = env.run_until_complete(old.run_id)
    new = env.trigger("charger")
    new_info = env.run_until_complete(new.run_id)

    assert info.status == new_info.status == RunStatus.COMPLETED
    assert paths == ["old", "new"]  # the old run replayed its old step, the new one patched


# -- child runs ------------------------------------------------------------------------


def _family(registry: TaskRegistry) -> None:
    @task(id="child", registry=registry, retry=RetryPolicy(max_attempts=1))
    def child(ctx: Context, payload: dict[str, Any]) -> int:
        ctx.sleep("think", timedelta(minutes=payload.get("minutes", 1)))
        if payload.get("fail"):
            raise ValueError("child says no")
        return int(payload["n"]) * 2

    @task(id="parent", registry=registry, retry=RetryPolicy(max_attempts=1))
    def parent(ctx: Context, payload: dict[str, Any]) -> Any:
        try:
            doubled = ctx.invoke("child", payload)
        except ChildRunFailedError as error:
            return {"child_failed": error.error_type}
        fire = ctx.trigger("child", {"n": 0, "minutes": 600})
        return {"doubled": doubled, "fired": fire}


def test_invoke_waits_for_the_child_and_returns_its_result(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _family(registry)
    run = env.trigger("parent", {"n": 21})
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING
    children = [r for r in env.list(task_id="child").runs]
    assert len(children) == 1 and children[0].parent_run_id == run.run_id

    env.advance(timedelta(minutes=1))  # the child wakes, completes, and wakes its parent
    info = env.get(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result["doubled"] == 42
    fired = env.get(info.result["fired"])
    assert fired.parent_run_id == run.run_id and fired.status == RunStatus.WAITING


def test_a_failed_child_raises_in_the_parent(registry: TaskRegistry, env: TestEnvironment) -> None:
    _family(registry)
    run = env.trigger("parent", {"n": 1, "fail": True})
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == {"child_failed": "ValueError"}


def test_cancelling_a_parent_cancels_its_children(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    _family(registry)
    run = env.trigger("parent", {"n": 1, "minutes": 60})
    env.run_until_idle()
    (child,) = env.list(task_id="child").runs

    env.cancel(run.run_id)

    assert env.get(child.run_id).status == RunStatus.CANCELLED
    env.advance(timedelta(hours=2))
    assert env.get(run.run_id).status == RunStatus.CANCELLED


# -- callbacks -------------------------------------------------------------------------


def _approval_by_callback(registry: TaskRegistry, outbox: list[str]) -> None:
    @task(id="callback-approval", registry=registry, retry=RetryPolicy(max_attempts=1))
    def approval(ctx: Context, payload: None) -> Any:
        try:
            return ctx.wait_for_callback(
                "approval", submit=outbox.append, timeout=timedelta(hours=24)
            )
        except WaitTimeoutError:
            return "expired"


def test_a_callback_completes_once(registry: TaskRegistry, env: TestEnvironment) -> None:
    outbox: list[str] = []
    _approval_by_callback(registry, outbox)
    run = env.trigger("callback-approval")
    env.run_until_idle()
    (token,) = outbox
    assert len(token) >= 32 and run.run_id not in token
    assert env.get(run.run_id).status == RunStatus.WAITING

    env.complete_callback(token, {"approved": True})
    env.run_until_idle()
    with pytest.raises(CallbackAlreadyCompletedError):
        env.complete_callback(token, {"approved": False})
    with pytest.raises(CallbackNotFoundError):
        env.complete_callback("not-a-token", {})

    info = env.get(run.run_id)
    assert info.status == RunStatus.COMPLETED
    assert info.result == {"approved": True}
    assert outbox == [token]  # the submit step ran once


def test_a_callback_error_raises_in_the_run(registry: TaskRegistry, env: TestEnvironment) -> None:
    outbox: list[str] = []
    _approval_by_callback(registry, outbox)
    run = env.trigger("callback-approval")
    env.run_until_idle()
    env.complete_callback(outbox[0], error={"type": "Rejected", "message": "no budget"})
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.FAILED
    assert info.error is not None and info.error.type == CallbackFailedError.__name__
    assert "no budget" in info.error.message


def test_a_callback_times_out_and_then_refuses_completion(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    outbox: list[str] = []
    _approval_by_callback(registry, outbox)
    run = env.trigger("callback-approval")
    env.advance(timedelta(hours=24))
    assert env.get(run.run_id).result == "expired"
    with pytest.raises(CallbackAlreadyCompletedError):
        env.complete_callback(outbox[0], {"approved": True})


def test_step_failed_error_keeps_the_original_type(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="typed-failure", registry=registry, retry=RetryPolicy(max_attempts=1))
    def typed_failure(ctx: Context, payload: None) -> str:
        try:
            ctx.step("boom", _no_cars)
        except StepFailedError as error:
            return error.error_type
        return "unreachable"

    run = env.trigger("typed-failure")
    assert env.run_until_complete(run.run_id).result == "LookupError"


def test_a_completion_whose_delivery_died_can_be_retried(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    outbox: list[str] = []
    _approval_by_callback(registry, outbox)
    run = env.trigger("callback-approval")
    env.run_until_idle()
    (token,) = outbox
    # given: a first completion claimed the token, then died before delivering the data
    stored = env.codec.encode({"data": {"approved": True}}, "x")
    env.store.claim_callback(token, env.now(), stored)

    with pytest.raises(CallbackAlreadyCompletedError):  # other data: a second completion
        env.complete_callback(token, {"approved": False})
    env.complete_callback(token, {"approved": True})  # the same completion, retried
    env.run_until_idle()
    with pytest.raises(CallbackAlreadyCompletedError):  # delivered now: spent for good
        env.complete_callback(token, {"approved": True})

    assert env.get(run.run_id).result == {"approved": True}
