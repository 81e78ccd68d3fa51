"""Versioning: a run is pinned to the code version that started it. A wake-up handled by
another code version never replays it with new code: it is routed to the pinned version,
or held in a visible state that names both versions, and resumes once that version runs."""

from __future__ import annotations

from datetime import timedelta

from durable import Context, RunStatus, TaskRegistry, task
from durable.records import WakeUp
from durable.testing import TestEnvironment
from durable.worker import Handled, WorkerConfig


def _tasks(registry: TaskRegistry, executed: list[str]) -> None:
    @task(id="pinned", registry=registry)
    def pinned(ctx: Context, payload: None) -> str:
        ctx.step("before", lambda: executed.append("before"))
        ctx.sleep("nap", timedelta(hours=1))
        ctx.step("after", lambda: executed.append("after"))
        return "done"


class RecordingRouter:
    """A router to a deployment that does not exist here: it records what it was given."""

    def __init__(self, routes: dict[str, str]) -> None:
        self.routes = routes
        self.routed: list[tuple[str, WakeUp]] = []

    def route(self, code_version: str, message: WakeUp) -> bool:
        if code_version not in self.routes:
            return False
        self.routed.append((code_version, message))
        return True


def test_another_code_version_holds_the_run_visibly_until_its_own_returns(
    registry: TaskRegistry,
) -> None:
    executed: list[str] = []
    _tasks(registry, executed)
    with TestEnvironment(registry=registry, code_version="v1") as env:
        run = env.trigger("pinned")
        env.run_until_idle()
        assert executed == ["before"]

        # when: v2 is deployed while the run sleeps
        env.worker.config = WorkerConfig(code_version="v2")
        env.advance(timedelta(hours=2))
        info = env.get(run.run_id)
        assert info.status == RunStatus.WAITING
        assert info.waiting_for == "code-version:v1"
        assert info.error is not None and info.error.type == "VersionMismatch"
        assert "'v1'" in info.error.message and "'v2'" in info.error.message
        assert executed == ["before"]  # nothing replayed with v2's code
        assert Handled.VERSION_MISMATCH in [handled for _, handled in env.handled]

        # then: v1 is back; the sweeper's next wake-up resumes the run
        env.worker.config = WorkerConfig(code_version="v1")
        assert env.sweep() == 1
        info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert executed == ["before", "after"]


def test_a_router_hands_the_wake_up_to_the_pinned_version(registry: TaskRegistry) -> None:
    executed: list[str] = []
    _tasks(registry, executed)
    with TestEnvironment(registry=registry, code_version="v1") as env:
        run = env.trigger("pinned")
        env.run_until_idle()
        router = RecordingRouter({"v1": "arn:aws:lambda:us-east-1:1:function:worker:v1"})
        env.worker.config = WorkerConfig(code_version="v2")
        env.worker.router = router
        env.advance(timedelta(hours=2))

    assert [version for version, _ in router.routed] == ["v1"]
    assert router.routed[0][1].run_id == run.run_id
    assert executed == ["before"]
