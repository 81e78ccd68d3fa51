"""X-Ray: a subsegment per run invocation and one per fresh step attempt, annotated; replayed
steps summed on the run's subsegment; nothing at all when tracing is off.

A real aws_xray_sdk recorder records into a segment per invocation (as Lambda's facade
segment would) and sends it to a capturing emitter, whose documents the tests read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Tracer
from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core.context import Context as XRayContext
from aws_xray_sdk.core.recorder import AWSXRayRecorder

from durable import AsyncContext, Context, RetryPolicy, TaskRegistry, task
from durable.errors import InfrastructureError
from durable.telemetry import RUN_SUBSEGMENT, observed_invocation, recorder_of
from durable.testing import Faults, TestEnvironment


class CapturingEmitter:
    """Keeps the documents the recorder would send to the X-Ray daemon."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.sent.append(entity.to_dict())

    def set_daemon_address(self, address: str) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[AWSXRayRecorder]:
    # A disabled Powertools tracer (every one outside Lambda) turns the SDK off process-wide.
    was_enabled = global_sdk_config.sdk_enabled()
    config = dict(Tracer._config)
    global_sdk_config.set_sdk_enabled(True)
    xray = AWSXRayRecorder()
    xray.configure(
        sampling=False,
        context=XRayContext(),
        emitter=CapturingEmitter(),
        streaming_threshold=10_000,
        context_missing="LOG_ERROR",
    )
    yield xray
    global_sdk_config.set_sdk_enabled(was_enabled)
    Tracer._config = config


def _deliver_traced(env: TestEnvironment, xray: AWSXRayRecorder) -> list[dict[str, Any]]:
    """Every wake-up due now, each in a segment of its own; the run subsegments sent."""
    runs: list[dict[str, Any]] = []
    while (message := env.queue.pop_due(env.now())) is not None:
        xray.begin_segment("worker")
        observed_invocation(env.worker, message, None, None, xray)
        xray.end_segment()
        emitter: CapturingEmitter = xray.emitter
        (segment,) = emitter.sent[-1:]
        runs.extend(s for s in segment.get("subsegments", []) if s["name"] == RUN_SUBSEGMENT)
    return runs


def _steps(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in run.get("subsegments", []) if s["name"].startswith("step ")]


def test_fresh_steps_get_annotated_subsegments_and_replayed_ones_are_counted(
    recorder: AWSXRayRecorder,
) -> None:
    registry = TaskRegistry()

    @task(id="traced", registry=registry)
    def traced(ctx: Context, payload: None) -> str:
        ctx.step("reserve", lambda: "r")
        ctx.step("charge", lambda: "c")
        ctx.sleep("cool-off", timedelta(minutes=5))
        return ctx.step("ship", lambda: "s")

    with TestEnvironment(registry=registry) as env:
        run_id = env.trigger("traced").run_id
        first = _deliver_traced(env, recorder)
        env.clock.advance(timedelta(minutes=5))
        second = _deliver_traced(env, recorder)

    (run1,) = first
    assert run1["annotations"] == {
        "handled": "executed",
        "run_id": run_id,
        "task_id": "traced",
        "task_attempt": 1,
        "replayed": False,
        "replayed_operations": 0,
        "checkpoints_written": 3,
    }
    assert [s["name"] for s in _steps(run1)] == ["step reserve", "step charge"]
    reserve = _steps(run1)[0]
    assert reserve["annotations"] == {
        "run_id": run_id,
        "task_id": "traced",
        "step": "reserve",
        "step_attempt": 1,
        "task_attempt": 1,
        "replayed": False,
    }
    assert reserve["start_time"] <= reserve["end_time"]
    assert "error" not in reserve

    # the second invocation replays reserve, charge and the sleep: counted, not re-traced
    (run2,) = second
    assert run2["annotations"]["replayed"] is True
    assert run2["annotations"]["replayed_operations"] == 3
    assert [s["name"] for s in _steps(run2)] == ["step ship"]


def test_a_failed_step_attempt_is_flagged_and_its_retry_is_the_next_attempt(
    recorder: AWSXRayRecorder,
) -> None:
    registry = TaskRegistry()
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("down")
        return "up"

    @task(id="flaky", registry=registry)
    def flaky_task(ctx: Context, payload: None) -> str:
        return ctx.step("call", flaky, retry=RetryPolicy(max_attempts=2))

    with TestEnvironment(registry=registry) as env:
        env.trigger("flaky")
        first = _deliver_traced(env, recorder)
        env.clock.advance(timedelta(minutes=1))
        second = _deliver_traced(env, recorder)

    (failed,) = _steps(first[0])
    assert failed["error"] is True
    assert failed["metadata"]["durable"]["error"] == "ConnectionError"
    assert failed["annotations"]["step_attempt"] == 1
    (retried,) = _steps(second[0])
    assert retried["annotations"]["step_attempt"] == 2
    assert "error" not in retried


def test_no_subsegment_at_all_when_tracing_is_disabled(recorder: AWSXRayRecorder) -> None:
    registry = TaskRegistry()

    @task(id="untraced", registry=registry)
    def untraced(ctx: Context, payload: None) -> str:
        return ctx.step("only", lambda: "x")

    # a disabled tracer whose provider is the recording recorder, SDK switched back on
    tracer = Tracer(provider=recorder, disabled=True, auto_patch=False)
    global_sdk_config.set_sdk_enabled(True)
    assert recorder_of(tracer) is None
    with TestEnvironment(registry=registry) as env:
        from durable.bootstrap import Runtime

        runtime = Runtime.from_parts(
            store=env.store, queue=env.queue, blobs=env.blobs, clock=env.clock, registry=registry
        )
        run_id = runtime.client.trigger("untraced", None).run_id
        message = env.queue.pop_due(env.now())
        assert message is not None
        segment = recorder.begin_segment("worker")
        assert runtime.process_wake_up(message.to_json(), None, None, tracer) == "executed"
        recorder.end_segment()
        assert env.get(run_id).result == "x"
    assert segment.subsegments == []


def test_gathered_async_steps_are_siblings_under_the_run(recorder: AWSXRayRecorder) -> None:
    registry = TaskRegistry()

    async def fetch(name: str, delay: float) -> str:
        await asyncio.sleep(delay)  # they overlap: the first one ends last
        return name

    @task(id="gathered", registry=registry)
    async def gathered(ctx: AsyncContext, payload: None) -> list[str]:
        return list(
            await asyncio.gather(
                ctx.step("slow", fetch, "slow", 0.03), ctx.step("fast", fetch, "fast", 0.0)
            )
        )

    with TestEnvironment(registry=registry) as env:
        run_id = env.trigger("gathered").run_id
        (run,) = _deliver_traced(env, recorder)
        assert env.get(run_id).result == ["slow", "fast"]

    # each step its own subsegment, directly under the run's: none nested in another
    assert sorted(s["name"] for s in _steps(run)) == ["step fast", "step slow"]
    assert all("subsegments" not in s for s in _steps(run))
    assert {s["annotations"]["step"] for s in _steps(run)} == {"slow", "fast"}


def test_an_invocation_that_meets_an_infrastructure_error_is_a_fault_on_its_subsegment(
    recorder: AWSXRayRecorder,
) -> None:
    registry = TaskRegistry()

    @task(id="throttled", registry=registry)
    def throttled(ctx: Context, payload: None) -> str:
        return ctx.step("only", lambda: "x")

    faults = Faults(seed=3)
    with TestEnvironment(registry=registry, faults=faults) as env:
        with faults.paused():
            env.trigger("throttled")
        message = env.queue.pop_due(env.now())
        assert message is not None
        faults.throttle("dynamodb", 1.0)  # every DynamoDB call from now on
        segment = recorder.begin_segment("worker")
        with pytest.raises(InfrastructureError):
            observed_invocation(env.worker, message, None, None, recorder)
        recorder.end_segment()

    (run,) = [s.to_dict() for s in segment.subsegments]
    assert run["name"] == RUN_SUBSEGMENT
    assert run["fault"] is True
    assert "InfrastructureError" in run["metadata"]["durable"]["error"]
