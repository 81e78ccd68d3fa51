"""The composition root: adapters in, a wired `Runtime` (client, worker, sweep) out, cached
per container.

    get_runtime() ─► environment_adapters() (`durable.adapters`: settings, task modules,
                     DynamoDB + SQS + S3) ─► Client + Worker

A Lambda container builds its runtime on its first invocation and keeps it for the next
ones (`get_runtime`); tests build one from explicit parts (`Runtime.from_parts`) and clear
the cache with `reset_runtime`. The Lambda handlers call in here and hold no logic:
`Runtime.process_wake_up` takes one SQS message body (a body that is not a wake-up is
logged and dropped, never retried), `Runtime.sweep` is the scheduled sweeper (it also
fires the cron tasks' runs).

Nothing here imports moto or the CLI: this module is on every handler's cold-start path.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from durable.adapters import environment_adapters, forget_adapters
from durable.blobs.base import BlobStore
from durable.client import Client
from durable.clock import Clock, SystemClock
from durable.logs import library_logger
from durable.queues.base import WakeQueue
from durable.records import WakeUp
from durable.routing import LambdaVersionRouter
from durable.runlogs.base import RunLogSource
from durable.services.purge import send_purge_messages
from durable.services.schedules import fire_due_schedules
from durable.services.sweeper import sweep
from durable.settings import Settings
from durable.storage.base import RunStore
from durable.task import TaskRegistry, default_registry
from durable.telemetry import observed_invocation, recorder_of
from durable.values import ValueCodec
from durable.worker import Worker, WorkerConfig

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics, Tracer

# What `process_wake_up` reports for a body that is not a wake-up message.
MALFORMED = "malformed"
# How long one sweep may spend re-enqueuing overdue runs: well inside the sweeper's 60-s
# Lambda timeout.
SWEEP_BUDGET = timedelta(seconds=20)


class HasRemainingTime(Protocol):
    """The part of a Lambda context the worker needs."""

    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything an invocation needs, wired once: adapters, client and worker."""

    store: RunStore
    queue: WakeQueue
    blobs: BlobStore
    codec: ValueCodec
    clock: Clock
    registry: TaskRegistry
    client: Client
    worker: Worker
    settings: Settings

    @classmethod
    def from_parts(
        cls,
        *,
        store: RunStore,
        queue: WakeQueue,
        blobs: BlobStore,
        clock: Clock | None = None,
        registry: TaskRegistry | None = None,
        settings: Settings | None = None,
        codec: ValueCodec | None = None,
        logs: RunLogSource | None = None,
    ) -> Runtime:
        """A runtime on the given adapters (tests, the local dev server)."""
        settings = settings if settings is not None else Settings()
        clock = clock if clock is not None else SystemClock()
        registry = registry if registry is not None else default_registry
        codec = codec if codec is not None else ValueCodec(blobs)
        client = Client(
            store=store,
            queue=queue,
            codec=codec,
            clock=clock,
            registry=registry,
            code_version=settings.code_version,
            retention=settings.retention,
            logs=logs,
        )
        worker = Worker(
            store=store,
            queue=queue,
            codec=codec,
            clock=clock,
            registry=registry,
            config=WorkerConfig(
                lease=timedelta(seconds=settings.lease_seconds),
                margin=timedelta(seconds=settings.invocation_margin_seconds),
                retention=settings.retention,
                code_version=settings.code_version,
                hold_recheck=settings.hold_recheck,
            ),
            router=LambdaVersionRouter.from_settings(settings),
        )
        return cls(
            store=store,
            queue=queue,
            blobs=blobs,
            codec=codec,
            clock=clock,
            registry=registry,
            client=client,
            worker=worker,
            settings=settings,
        )

    def process_wake_up(
        self,
        body: str,
        time_left: Callable[[], timedelta] | None = None,
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
    ) -> str:
        """Handle one queue message body; returns what was done (a `Handled` value).

        A run's invocation is measured into `metrics` (a line of its own per run, with the
        task as a dimension) and traced with `tracer` (`durable.telemetry`).

        A body that is not a wake-up can never succeed: retrying it would only cycle it
        through the queue until the dead-letter queue takes it. It is logged as an error
        and reported as handled (`MALFORMED`). Infrastructure errors propagate, so the
        batch reports the record as failed and SQS delivers it again.
        """
        try:
            message = WakeUp.from_json(body)
        except ValueError as exc:
            library_logger().error("dropped a malformed wake-up message", error=str(exc))
            outcome = MALFORMED
        else:
            try:
                recorder = recorder_of(tracer)
                report = observed_invocation(self.worker, message, time_left, metrics, recorder)
                outcome = str(report.handled)
            except Exception:
                library_logger().exception(
                    "wake-up failed; SQS will deliver it again",
                    run_id=message.run_id,
                    reason=str(message.reason),
                )
                _count(metrics, "wakeup_failed")
                raise
        _count(metrics, f"wakeup_{outcome}")
        return outcome

    def sweep(self, metrics: Metrics | None = None) -> int:
        """Re-enqueue every run whose wake-up is overdue; returns how many were sent.

        First fire the scheduled tasks' instants that have come (`schedules_fired` metric;
        see `durable.services.schedules`). Then send one PURGE message for each expiry shard that
        holds runs past their retention (`purge_messages_sent` metric): the workers purge
        them (`durable.services.purge`), so a purge never delays a re-enqueue.
        """
        fired = fire_due_schedules(
            self.client, self.registry, self.clock, self.settings.schedule_lookback
        )
        _count(metrics, "schedules_fired", len(fired))
        grace = timedelta(seconds=self.settings.sweep_grace_seconds)
        sent = sweep(self.store, self.queue, self.clock, grace=grace, budget=SWEEP_BUDGET)
        _count(metrics, "runs_swept", sent)
        purges = send_purge_messages(self.store, self.queue, self.clock)
        _count(metrics, "purge_messages_sent", purges)
        return sent


def _count(metrics: Metrics | None, name: str, value: int = 1) -> None:
    """Add a count to the invocation's metrics (flushed by the handler's `log_metrics`)."""
    if metrics is not None:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def time_left_of(context: HasRemainingTime) -> Callable[[], timedelta]:
    """The worker's view of a Lambda context: how long this invocation may still run."""
    return lambda: timedelta(milliseconds=context.get_remaining_time_in_millis())


_lock = threading.Lock()
_cached: Runtime | None = None


def get_runtime(settings: Settings | None = None) -> Runtime:
    """This container's runtime, built on first use from `settings` (default: the env).

    Given settings other than the cached runtime's, a new runtime is built and cached.
    """
    global _cached
    with _lock:
        if _cached is None or (settings is not None and settings != _cached.settings):
            adapters = environment_adapters(settings)
            _cached = Runtime.from_parts(
                store=adapters.store,
                queue=adapters.queue,
                blobs=adapters.blobs,
                codec=adapters.codec,
                settings=adapters.settings,
                logs=adapters.logs,
            )
        return _cached


def set_runtime(runtime: Runtime) -> None:
    """Make `runtime` this process's runtime (tests, the local dev server)."""
    global _cached
    with _lock:
        _cached = runtime


def reset_runtime() -> None:
    """Forget the cached runtime (its adapters, the cached settings): the next call builds
    afresh."""
    global _cached
    with _lock:
        _cached = None
    forget_adapters()
