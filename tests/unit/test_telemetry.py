"""Monitoring on AWS, the runtime side: the worker handler's EMF lines per run invocation
(dimensions service and task_id), for runs that complete, retry a step, exhaust their
attempts, diverge from their log and time out (`durable.telemetry`)."""

from __future__ import annotations

import pytest
from tests.monitoring_kit import EmfLine, WorkerLambda, run_scenarios

from durable.telemetry import METRICS


@pytest.fixture(scope="module")
def scenarios() -> tuple[WorkerLambda, dict[str, str]]:
    return run_scenarios()


def test_each_run_invocation_is_one_emf_line_per_task(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, runs = scenarios
    lines = worker.task_lines("mon-complete")
    # a step, a sleep, then the second step: two invocations
    assert len(lines) == 2
    for line in lines:
        assert line.namespace == "durable"
        assert line.dimension_sets == [["service"], ["service", "task_id"]]
        assert line.dimensions == {"service": "durable", "task_id": "mon-complete"}
        assert line.raw["run_id"] == runs["mon-complete"]  # metadata, not a dimension
        assert all(line.units[name] == METRICS[name][0] for name in line.metrics)
    first, second = lines
    assert first.metrics["runs_started"] == [1.0]
    assert first.metrics["checkpoints_written"] == [2.0]  # step one, sleep started
    assert first.metrics["operations_replayed"] == [0.0]
    assert "runs_completed" not in first.metrics
    assert "runs_started" not in second.metrics
    assert second.metrics["operations_replayed"] == [2.0]  # step one and the sleep
    assert second.metrics["runs_completed"] == [1.0]
    assert second.metrics["invocation_duration"][0] > 0


def test_a_completed_run_counts_once_started_and_once_completed(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, _ = scenarios
    totals = worker.totals("mon-complete")
    assert totals["runs_started"] == 1
    assert totals["runs_completed"] == 1
    for never in ("runs_failed", "attempts_exhausted", "step_retries", "task_retries"):
        assert never not in totals


def test_a_retried_step_is_counted(scenarios: tuple[WorkerLambda, dict[str, str]]) -> None:
    worker, _ = scenarios
    first, second = worker.task_lines("mon-step-retry")
    assert first.metrics["step_retries"] == [1.0]
    assert "runs_completed" not in first.metrics
    assert "step_retries" not in second.metrics
    assert second.metrics["runs_completed"] == [1.0]


def test_a_run_that_fails_after_its_last_retry_has_exhausted_its_attempts(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, _ = scenarios
    first, last = worker.task_lines("mon-exhausted")
    assert first.metrics["task_retries"] == [1.0]
    assert "runs_failed" not in first.metrics
    assert last.metrics["runs_failed"] == [1.0]
    assert last.metrics["attempts_exhausted"] == [1.0]
    assert "non_determinism_errors" not in last.metrics


def test_a_divergence_is_a_non_determinism_error_and_a_hold_not_a_failure(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, _ = scenarios
    totals = worker.totals("mon-diverges")
    assert totals["non_determinism_errors"] == 1
    assert totals["runs_held"] == 1
    assert "runs_failed" not in totals
    assert "attempts_exhausted" not in totals


def test_a_timed_out_run_is_counted_apart_from_failures(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, _ = scenarios
    totals = worker.totals("mon-times-out")
    assert totals["runs_timed_out"] == 1
    assert "runs_failed" not in totals


def test_every_metric_the_runtime_declares_is_emitted_by_some_scenario(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, _ = scenarios
    emitted = {name for line in worker.emitted for name in line.metrics if "task_id" in line.raw}
    assert emitted == set(METRICS)


def test_the_service_level_line_of_the_handler_is_still_there(
    scenarios: tuple[WorkerLambda, dict[str, str]],
) -> None:
    worker, _ = scenarios
    service_lines = [line for line in worker.emitted if line.dimension_sets == [["service"]]]
    assert service_lines, "the handler's own Metrics flush"
    executed = sum(sum(line.metrics.get("wakeup_executed", [])) for line in service_lines)
    per_task = sum(
        len(line.metrics["invocation_duration"])
        for line in worker.emitted
        if "task_id" in line.dimensions
    )
    assert executed == per_task


def test_a_message_that_runs_no_code_emits_no_task_line() -> None:
    from durable import TaskRegistry
    from durable.records import WakeReason, WakeUp

    worker = WorkerLambda(TaskRegistry())
    with worker.installed():
        worker.invoke([WakeUp("run_does_not_exist", WakeReason.START)])
    assert [line for line in worker.emitted if "task_id" in line.dimensions] == []
    assert any("wakeup_unknown_run" in line.metrics for line in worker.emitted)


def test_emf_lines_parse_as_cloudwatch_reads_them() -> None:
    line = EmfLine.parse(
        '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"durable",'
        '"Dimensions":[["service"]],"Metrics":[{"Name":"x","Unit":"Count"}]}]},'
        '"service":"durable","x":[1.0,2.0]}'
    )
    assert line.metrics == {"x": [1.0, 2.0]}
    assert line.dimensions == {"service": "durable"}
