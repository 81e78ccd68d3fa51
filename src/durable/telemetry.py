"""Monitoring on AWS: each worker invocation as CloudWatch metrics (EMF) and X-Ray subsegments.

    handler ─► Runtime.process_wake_up ─► observed_invocation:
                 X-Ray "## durable run" subsegment ─► Worker.process (StepTracer: a
                 subsegment per fresh step attempt) ─► InvocationReport ─► one EMF line

Metrics: Powertools' EMF provider prints one line per run invocation, in the namespace of
the handler's `Metrics` ("durable"), under two dimension sets: `service` alone (what the
alarms watch: every task at once) and `service` + `task_id` (the dashboard's per-task
widgets). The per-invocation figures (checkpoints written, operations replayed, duration)
are always emitted, so their Average and percentiles are per invocation; the counts only
when not zero. The run id goes along as metadata (a field of the log line, no dimension).
One line per invocation rather than the handler's one flush: a batch of 10 records may
hold runs of 10 tasks, and a Lambda killed mid-batch keeps the lines of the runs done.

Traces: one subsegment per run invocation, annotated with the run, task, task attempt,
how the message was handled, and `replayed` / `replayed_operations`; under it one
subsegment per fresh step attempt (`StepTracer`, the attempt's observer), annotated with
run_id, task_id, step, step_attempt, task_attempt and `replayed` = false. A replayed step
gets no subsegment of its own: it executes nothing, every later invocation of the run
replays it again (a subsegment each would make a run of n steps cost n² of them), and
each step attempt already has its one subsegment in the trace of the invocation that ran
it; search X-Ray for `annotation.run_id = "run_..."` to see all of a run's steps. A step's
subsegment is written when the attempt ends, with its span on the run's clock: steps
gathered by an async task interleave, and a subsegment opened at each start would nest
them in one another. When the tracer is disabled nothing is built: no observer, no
subsegment.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from durable.operations.observer import StepSpan
from durable.records import RunStatus, WakeUp
from durable.worker import Worker
from durable.worker.report import InvocationReport

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics, Tracer

# The metrics, by name: (unit, meaning). README "Monitoring on AWS" and template.yaml's
# alarms and dashboard name them; tests/sam/test_monitoring.py checks they agree.
COUNT, MILLISECONDS = "Count", "Milliseconds"
METRICS: dict[str, tuple[str, str]] = {
    "runs_started": (COUNT, "runs whose first attempt began"),
    "runs_completed": (COUNT, "runs that completed"),
    "runs_failed": (COUNT, "runs that ended FAILED (whatever the cause)"),
    "runs_timed_out": (COUNT, "runs that exceeded their task timeout"),
    "attempts_exhausted": (COUNT, "runs that failed on their last task attempt, after retries"),
    "non_determinism_errors": (COUNT, "runs held because the code diverged from the log"),
    "runs_held": (COUNT, "runs held for a code fix (a divergence, an unknown task)"),
    "step_retries": (COUNT, "failed step attempts with a retry to come"),
    "task_retries": (COUNT, "failed task attempts with a retry to come"),
    "checkpoints_written": (COUNT, "log entries one invocation wrote"),
    "operations_replayed": (COUNT, "durable calls one invocation answered from the log"),
    "invocation_duration": (MILLISECONDS, "wall time of one run invocation"),
}
_ENDED = {
    RunStatus.COMPLETED: "runs_completed",
    RunStatus.FAILED: "runs_failed",
    RunStatus.TIMED_OUT: "runs_timed_out",
}  # a cancel ends a run in the API, not in the worker: no cancellation is counted here
RUN_SUBSEGMENT = "## durable run"


def invocation_metrics(report: InvocationReport, duration_ms: float) -> dict[str, float]:
    """The metric values of one run invocation (counts only when not zero)."""
    values: dict[str, float] = {
        "checkpoints_written": report.checkpoints_written,
        "operations_replayed": report.operations_replayed,
        "invocation_duration": round(duration_ms, 3),
    }
    counts = {
        "runs_started": int(report.started),
        "attempts_exhausted": int(report.attempts_exhausted),
        "non_determinism_errors": int(report.non_determinism),
        "runs_held": int(report.held),
        "step_retries": report.step_retries,
        "task_retries": report.task_retries,
    }
    if report.ended in _ENDED:
        counts[_ENDED[report.ended]] = 1
    values.update({name: count for name, count in counts.items() if count})
    return values


def emit_metrics(
    report: InvocationReport, duration_ms: float, namespace: str, service: str
) -> None:
    """Print one invocation's metrics as one EMF line (nothing for a message that ran no
    run's code: a stale or duplicate wake-up, a purge)."""
    if report.task_id is None:
        return
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    # A provider of its own (Metrics instances share one buffer: the handler's flush).
    provider = AmazonCloudWatchEMFProvider(namespace=namespace, service=service)
    provider.add_dimensions(service=service, task_id=report.task_id)
    for name, value in invocation_metrics(report, duration_ms).items():
        provider.add_metric(name=name, unit=METRICS[name][0], value=value)
    provider.add_metadata(key="run_id", value=report.run_id)
    provider.flush_metrics()


class XRayRecorder(Protocol):
    """The part of aws_xray_sdk's recorder (Powertools' tracer provider) used here."""

    def begin_subsegment(self, name: str, namespace: str = "local") -> Any: ...

    def end_subsegment(self, end_time: float | None = None) -> None: ...


class StepTracer:
    """The attempt's observer on X-Ray: a subsegment per fresh step attempt."""

    def __init__(self, recorder: XRayRecorder) -> None:
        self.recorder = recorder

    def operation_replayed(self, position: int) -> None:
        """Counted on the run's subsegment instead (see the module docstring)."""

    def step_ran(self, span: StepSpan) -> None:
        subsegment = self.recorder.begin_subsegment(f"step {span.step}")
        if subsegment is None:  # no segment to hang it on (no trace in progress)
            return
        subsegment.start_time = span.started_at.timestamp()
        for key, value in (
            ("run_id", span.run_id),
            ("task_id", span.task_id),
            ("step", span.step),
            ("step_attempt", span.step_attempt),
            ("task_attempt", span.task_attempt),
            ("replayed", False),
        ):
            subsegment.put_annotation(key, value)
        subsegment.put_metadata("position", span.position, "durable")
        if span.error is not None:
            subsegment.add_error_flag()
            subsegment.put_metadata("error", span.error, "durable")
        self.recorder.end_subsegment(span.ended_at.timestamp())


def recorder_of(tracer: Tracer | None) -> XRayRecorder | None:
    """The X-Ray recorder behind an enabled tracer; None when tracing is off."""
    if tracer is None or tracer.disabled:
        return None
    recorder: XRayRecorder = tracer.provider  # type: ignore[assignment]  # X-Ray's recorder
    return recorder


@contextmanager
def _run_subsegment(recorder: XRayRecorder | None) -> Iterator[Any]:
    subsegment = recorder.begin_subsegment(RUN_SUBSEGMENT) if recorder is not None else None
    try:
        yield subsegment
    except BaseException as exc:
        if subsegment is not None:
            subsegment.add_fault_flag()
            subsegment.put_metadata("error", f"{type(exc).__name__}: {exc}", "durable")
        raise
    finally:
        if subsegment is not None:
            assert recorder is not None
            recorder.end_subsegment()


def _annotate_run(subsegment: Any, report: InvocationReport) -> None:
    subsegment.put_annotation("handled", str(report.handled))
    if report.task_id is None:
        return
    subsegment.put_annotation("run_id", report.run_id)
    subsegment.put_annotation("task_id", report.task_id)
    subsegment.put_annotation("task_attempt", report.task_attempt)
    subsegment.put_annotation("replayed", report.operations_replayed > 0)
    subsegment.put_annotation("replayed_operations", report.operations_replayed)
    subsegment.put_annotation("checkpoints_written", report.checkpoints_written)


def observed_invocation(
    worker: Worker,
    message: WakeUp,
    time_left: Callable[[], timedelta] | None,
    metrics: Metrics | None,
    recorder: XRayRecorder | None,
) -> InvocationReport:
    """Run one wake-up through the worker, traced (given a recorder: `recorder_of` an
    enabled tracer) and measured (given `metrics`: its namespace and service name the EMF
    line)."""
    observer = StepTracer(recorder) if recorder is not None else None
    begun = time.perf_counter()
    with _run_subsegment(recorder) as subsegment:
        report = worker.process(message, time_left, observer)
        if subsegment is not None:
            _annotate_run(subsegment, report)
    if metrics is not None:
        duration_ms = (time.perf_counter() - begun) * 1000
        namespace, service = metrics.namespace or "durable", metrics.service or "durable"
        emit_metrics(report, duration_ms, namespace, service)
    return report
