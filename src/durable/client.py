"""`Client`: trigger runs and look at them. The HTTP API and the CLI are thin layers on it.

Every write is validated first and stores nothing on bad input: an unknown task raises
`UnknownTaskError`, a payload that does not fit the task's annotation
`PayloadValidationError`, a value over 6 MB `PayloadTooLargeError`.

The writes are the run services' (which the worker uses too): `durable.services.runs`
starts runs, `durable.services.delivery` delivers events and callback completions,
`durable.services.endings` cancels, `durable.services.repair` retries, reruns and forks.
The client adds the caller's view: values decoded, callback tokens redacted.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from durable.adapters import environment_adapters
from durable.blobs.cache import CachedBlobs
from durable.clock import Clock, SystemClock
from durable.errors import RunNotFoundError, TaskFailedError
from durable.queues.base import WakeQueue
from durable.records import Checkpoint, CheckpointKind, RunRecord, RunStatus
from durable.runlogs.base import DEFAULT_LIMIT, LogPage, RunLogSource
from durable.runlogs.memory import MemoryRunLogSource
from durable.serialization import JsonData, revive
from durable.services.bulk import cancel_audited, read_bulk_job, start_bulk
from durable.services.delivery import InboxDelivery
from durable.services.endings import RunEndings
from durable.services.labels import check_tag
from durable.services.repair import fork_run, rerun_run, retry_run
from durable.services.resume import resume_run
from durable.services.runs import RunHandle, RunStarter
from durable.services.slots import KeyUsage, queue_usage
from durable.services.stats import Stats, collect_stats
from durable.settings import get_settings
from durable.storage.base import RunStore
from durable.storage.bulk_jobs import BulkFilter, BulkJob
from durable.storage.log_cache import LogCache
from durable.task import TaskDefinition, TaskRegistry, default_registry
from durable.timeline import build_timeline, decoded_input
from durable.timeline import redacted_token as _redacted_token
from durable.timeline import redacted_wait as _redacted_wait
from durable.values import ValueCodec
from durable.views import HistoryEntry, RunInfoView, RunList

__all__ = ["Client", "HistoryEntry", "RunInfoView", "RunList"]

# Who a repair made through this class is recorded as (the HTTP API records its caller).
CLIENT_CALLER = "client:python"
# Trigger.dev's idempotencyKeyTTL default (`DURABLE_IDEMPOTENCY_TTL_SECONDS` in a deployment).
DEFAULT_IDEMPOTENCY_KEY_TTL = timedelta(hours=24)

PayloadT = TypeVar("PayloadT")
ResultT = TypeVar("ResultT")


def _utc(when: datetime | None) -> datetime | None:
    """An instant given without a time zone is UTC."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


class Client:
    """The operations of the HTTP API, in Python."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: WakeQueue,
        codec: ValueCodec,
        clock: Clock | None = None,
        registry: TaskRegistry | None = None,
        code_version: str = "dev",
        retention: timedelta | None = None,
        logs: RunLogSource | None = None,
        idempotency_key_ttl: timedelta | None = DEFAULT_IDEMPOTENCY_KEY_TTL,
    ) -> None:
        self.store = store
        self.queue = queue
        self.codec = codec
        self.clock = clock or SystemClock()
        self.registry = registry or default_registry
        self.code_version = code_version
        self.retention = retention  # how long a cancelled run is kept; None: forever
        # How long a trigger's idempotency key holds unless the trigger says; None: forever.
        self.idempotency_key_ttl = idempotency_key_ttl
        # Where runs' log lines are read: CloudWatch Logs in a deployment; without one, a
        # memory source (the test kit feeds its own).
        self.log_source: RunLogSource = logs if logs is not None else MemoryRunLogSource()
        # What the run page's polls read again and again, read once: logs, whose tail alone
        # is read next time (`durable.storage.log_cache`), and the blobs of large values
        # (`durable.blobs.cache`). Each is its store's: replaced if the store is swapped.
        self._logs = LogCache(store)
        self._blobs_read = CachedBlobs(codec.blobs)
        self._reads = codec.over(self._blobs_read)

    @classmethod
    def from_environment(cls) -> Client:
        """The client of this process's deployment: DynamoDB/SQS/S3 named by the `DURABLE_*`
        environment (and `AWS_ENDPOINT_URL` for moto), with the task modules imported.

        Its adapters are the container's (`durable.adapters`), which the Lambda handlers'
        runtime uses too: a client from here sees and starts the same runs as the API's.
        """
        adapters = environment_adapters()
        return cls(
            store=adapters.store,
            queue=adapters.queue,
            codec=adapters.codec,
            code_version=adapters.settings.code_version,
            retention=adapters.settings.retention,
            logs=adapters.logs,
            idempotency_key_ttl=adapters.settings.idempotency_key_ttl,
        )

    def _starter(self) -> RunStarter:
        # Built per call from the attributes, which callers (tests) may swap, e.g. `registry`.
        return RunStarter(
            store=self.store,
            queue=self.queue,
            codec=self.codec,
            clock=self.clock,
            registry=self.registry,
            code_version=self.code_version,
        )

    def _delivery(self) -> InboxDelivery:
        return InboxDelivery(store=self.store, queue=self.queue, codec=self.codec, clock=self.clock)

    # -- writes -------------------------------------------------------------------------

    @overload
    def trigger(
        self,
        task: TaskDefinition[PayloadT, ResultT],
        payload: PayloadT,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
        *,
        parent_run_id: str | None = None,
        run_id: str | None = None,
        batch_slot: str | None = None,
        started_at: datetime | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key_ttl: timedelta | None = None,
        concurrency_key: str | None = None,
        priority: int = 0,
        ttl: timedelta | None = None,
    ) -> RunHandle[ResultT]: ...

    @overload
    def trigger(
        self,
        task: str,
        payload: Any = None,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
        *,
        parent_run_id: str | None = None,
        run_id: str | None = None,
        batch_slot: str | None = None,
        started_at: datetime | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key_ttl: timedelta | None = None,
        concurrency_key: str | None = None,
        priority: int = 0,
        ttl: timedelta | None = None,
    ) -> RunHandle[Any]: ...

    def trigger(
        self,
        task: TaskDefinition[Any, Any] | str,
        payload: Any = None,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
        *,
        parent_run_id: str | None = None,
        run_id: str | None = None,
        batch_slot: str | None = None,
        started_at: datetime | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key_ttl: timedelta | None = None,
        concurrency_key: str | None = None,
        priority: int = 0,
        ttl: timedelta | None = None,
    ) -> RunHandle[Any]:
        """Start a run of `task` (its handle, typed, or its id); with an idempotency key,
        the same key gives the same run.

        Given the task's handle (what `@task` returns), the type checker checks the payload
        and the returned `RunHandle` carries the result type, which `result(handle)`
        returns. `started_at` fixes the run's `ctx.run.started_at` before its first
        invocation (a scheduled run's is its scheduled instant); by default it is when the
        run first runs.

        `tags` (up to 10, e.g. "user:123") find the run again (`list(tag=...)`); `metadata`
        (up to 16 string key-values) is shown with it (`durable.services.labels`). The
        idempotency key holds for `idempotency_key_ttl` (the client's default, 24 h,
        when None); a trigger after it starts a new run under the same key.

        Flow control (`durable.flow`): the task's queue limits apply per `concurrency_key`
        (a tenant, a user); among the runs waiting in one queue and key, a higher
        `priority` (0 to 100) starts first; a run not started within `ttl` of its start
        time ends CANCELLED.
        """
        return self._starter().trigger(
            task if isinstance(task, str) else task.id,
            payload,
            idempotency_key,
            delay,
            parent_run_id=parent_run_id,
            run_id=run_id,
            batch_slot=batch_slot,
            started_at=started_at,
            tags=tags,
            metadata=metadata,
            idempotency_key_ttl=idempotency_key_ttl or self.idempotency_key_ttl,
            concurrency_key=concurrency_key,
            priority=priority,
            ttl=ttl,
        )

    def send_event(
        self, run_id: str, name: str, data: Any = None, event_id: str | None = None
    ) -> None:
        """Deliver event `name` to a run; a `wait_for_event(name)` consumes it (now or later).

        The event is stored, then the run is marked due if it waits for it, then woken: if
        this call fails half-way (an `InfrastructureError`), the sweeper or a retry of the
        call finishes the delivery. Give an `event_id` (unique per event, as Inngest's or a
        webhook's delivery id) to make retries safe: the same id is stored once.
        """
        self._delivery().send_event(run_id, name, data, event_id)

    def complete_callback(self, token: str, data: Any = None, error: Any = None) -> None:
        """Complete a callback once: with `data`, or with `error` (raised in the run).

        Raises CallbackNotFoundError for an unknown token, CallbackAlreadyCompletedError for
        one completed before or past its timeout.
        """
        self._delivery().complete_callback(token, data, error)

    def cancel(self, run_id: str, *, by: str | None = None) -> RunInfoView:
        """Cancel a run that has not ended; a running invocation stops at its next operation.
        With `by` (the caller), the cancel is audited in the run's log."""
        endings = RunEndings(self._starter(), self.retention)
        return self._view(cancel_audited(endings, self.clock, run_id, by))

    def bulk(
        self, action: str, filter: BulkFilter, *, by: str = CLIENT_CALLER, all_runs: bool = False
    ) -> BulkJob:
        """Start a bulk job: `action` on every run `filter` matches (`durable.services.bulk`);
        an empty filter needs `all_runs=True`."""
        return start_bulk(self.store, self.queue, self.clock, action, filter, by, all_runs=all_runs)

    def bulk_job(self, job_id: str) -> BulkJob:
        """A bulk job and its progress; raises BulkJobNotFoundError for an unknown id."""
        return read_bulk_job(self.store, self.queue, self.clock, job_id)

    def resume(self, run_id: str, *, by: str = CLIENT_CALLER) -> RunInfoView:
        """Let a held run go on (`durable.services.resume`): RunNotHeldError if it is not held."""
        return self._view(
            resume_run(
                self.store, self.queue, self.clock, run_id, by, code_version=self.code_version
            )
        )

    # -- repairs (`durable.services.repair`): each recorded in the run's log, by `by` ----

    def retry(self, run_id: str, *, by: str = CLIENT_CALLER) -> RunInfoView:
        """Retry a FAILED, TIMED_OUT or CANCELLED run from its failure point (same run id,
        fresh attempt budget); `RepairRefusedError` (409) when that does not apply."""
        return self._view(retry_run(self.store, self.queue, self.clock, run_id, by))

    def rerun(
        self, run_id: str, *, by: str = CLIENT_CALLER, idempotency_key: str | None = None
    ) -> RunInfoView:
        """A new run of the run's task with its payload, linked to it; the new run."""
        return self._view(
            rerun_run(
                self.store,
                self.queue,
                self.clock,
                run_id,
                by,
                starter=self._starter(),
                idempotency_key=idempotency_key,
            )
        )

    def fork(
        self,
        run_id: str,
        from_step: int | str,
        *,
        by: str = CLIENT_CALLER,
        idempotency_key: str | None = None,
    ) -> RunInfoView:
        """A new run that copies the run's first `from_step` log entries (or those before
        the step so named) and runs the rest on today's code; the new run."""
        return self._view(
            fork_run(
                self.store,
                self.queue,
                self.clock,
                run_id,
                by,
                from_step,
                starter=self._starter(),
                idempotency_key=idempotency_key,
            )
        )

    def cancel_children(self, run_id: str) -> None:
        """Cancel every child run this run started that has not ended (recursively)."""
        RunEndings(self._starter(), self.retention).cancel_children(run_id)

    # -- reads --------------------------------------------------------------------------

    def get(self, run_id: str) -> RunInfoView:
        """The run's status, payload, result or error, attempts, timestamps and version."""
        return self._view(self._require(run_id))

    def list(
        self,
        task_id: str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        tag: str | None = None,
        finished_after: datetime | None = None,
        finished_before: datetime | None = None,
        values: bool = True,
    ) -> RunList:
        """Runs, newest first, filtered by task, status, tag, creation time (at or after
        `created_after`, before `created_before`; a naive instant is UTC) and finish time
        (`finished_after`, `finished_before`: finished runs only).

        A page filtered by what only the runs themselves hold (a tag with a task or a
        status, a finish time) examines a bounded number of index entries
        (`durable.storage.base.Listings`): it may be short, or empty, with a `next_cursor`.

        With `values=False` the views are summaries: payload and result are left None,
        undecoded (no blob is read), as the runs list shows them.
        """
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        page = self.store.list_runs(
            task_id=task_id,
            status=RunStatus(status) if status is not None else None,
            limit=limit,
            cursor=cursor,
            created_after=_utc(created_after),
            created_before=_utc(created_before),
            tag=check_tag(tag) if tag is not None else None,
            finished_after=_utc(finished_after),
            finished_before=_utc(finished_before),
        )
        return RunList([self._view(run, values) for run in page.runs], page.next_cursor)

    def queue_usage(self, name: str) -> builtins.list[KeyUsage]:
        """Slots in use and runs waiting, per concurrency key, of queue `name` (up to 100
        keys: `GET /queues/{name}`)."""
        return queue_usage(self.store, name)[0]

    def stats(self, worker_limit: int | None = None) -> Stats:
        """Queue, worker and per-task run figures (`durable.services.stats`); the worker
        limit defaults to the settings' `worker_max_concurrency`."""
        if worker_limit is None:
            worker_limit = get_settings().worker_max_concurrency
        return collect_stats(self.store, self.queue, self.clock, self.registry.ids(), worker_limit)

    def history(self, run_id: str) -> builtins.list[HistoryEntry]:
        """The run's checkpoint log, in order."""
        return [self._entry(cp) for cp in self._log(self._require(run_id))]

    def timeline(self, run_id: str) -> dict[str, Any]:
        """The run's timeline (`durable.timeline`): one read of the run and of its log (of
        the entries not read before), plus one of each batch record it started."""
        run = self._require(run_id)
        checkpoints = self._log(run)
        batches = {
            (cp.task_attempt, cp.op): stored
            for cp in checkpoints
            if cp.kind is CheckpointKind.BATCH_STARTED
            and (stored := self.store.get_batch(run_id, cp.task_attempt, cp.op)) is not None
        }
        return build_timeline(run, checkpoints, self._decode, self.clock.now(), batches)

    def logs(self, run_id: str, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> LogPage:
        """What the run logged (`ctx.logger` and its standard logging), oldest first, up to
        `limit` lines after `cursor`. Pass the page's `next_cursor` back to get only newer
        lines (to follow a run). `RunNotFoundError` for an unknown run;
        `InvalidLogCursorError` for a cursor that is not a `next_cursor`."""
        run = self._require(run_id)
        return self.log_source.read(run_id, cursor=cursor, limit=limit, since=run.created_at)

    def wait(
        self, run_id: str, timeout: timedelta = timedelta(seconds=60), poll: float = 0.2
    ) -> RunInfoView:
        """Poll until the run ends; TimeoutError after `timeout` (real time, caller side)."""
        limit = time.monotonic() + timeout.total_seconds()
        while True:
            view = self.get(run_id)
            if view.status.is_terminal:
                return view
            if time.monotonic() >= limit:
                raise TimeoutError(f"run {run_id} is still {view.status} after {timeout}")
            time.sleep(poll)

    @overload
    def result(
        self, run: RunHandle[ResultT], timeout: timedelta = timedelta(seconds=60)
    ) -> ResultT: ...

    @overload
    def result(self, run: str, timeout: timedelta = timedelta(seconds=60)) -> JsonData: ...

    def result(self, run: RunHandle[Any] | str, timeout: timedelta = timedelta(seconds=60)) -> Any:
        """The run's result once it completes; TaskFailedError if it ends otherwise.

        Given the handle `trigger` returned, the result comes as the task's result type (a
        model is revived); given a run id, as JSON values.
        """
        run_id = run if isinstance(run, str) else run.run_id
        view = self.wait(run_id, timeout)
        if view.status is not RunStatus.COMPLETED:
            raise TaskFailedError(run_id, view.status, view.error)
        return view.result if isinstance(run, str) else revive(view.result, run.result_annotation)

    # -- mapping ------------------------------------------------------------------------

    def _require(self, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        return run

    def _log(self, run: RunRecord) -> builtins.list[Checkpoint]:
        if self._logs.store is not self.store:
            self._logs = LogCache(self.store)
        return self._logs.load(run.run_id, run.created_at)

    def _decode(self, stored: str) -> JsonData:
        """A stored value, its blob read once."""
        if self._blobs_read.inner is not self.codec.blobs:
            self._blobs_read = CachedBlobs(self.codec.blobs)
            self._reads = self.codec.over(self._blobs_read)
        return self._reads.decode(stored)

    def _view(self, run: RunRecord, values: bool = True) -> RunInfoView:
        payload = self._decode(run.payload) if values else None
        result = self._decode(run.result) if values and run.result is not None else None
        return RunInfoView.of(run, payload, result, _redacted_wait(run.waiting_for))

    def _entry(self, cp: Checkpoint) -> HistoryEntry:
        return HistoryEntry(
            seq=cp.seq,
            kind=str(cp.kind),
            name=cp.name,
            position=cp.op,
            attempt=cp.step_attempt,
            task_attempt=cp.task_attempt,
            at=cp.at,
            value=(
                _redacted_token(self._decode(cp.value))
                if cp.kind is CheckpointKind.CALLBACK_CREATED and cp.value is not None
                else self._decode(cp.value)
                if cp.value is not None
                else None
            ),
            error=cp.error,
            wake_at=cp.wake_at,
            started_at=cp.started_at,
            input=decoded_input(cp.input),
        )
