"""`TestEnvironment`: the real worker and client on memory (or moto) adapters and a virtual clock.

Like Temporal's time-skipping environment: timers and backoff take no real time. A wait
longer than the queue's delay is parked in the store (`durable.services.timers`); the kit
hands it off at its moment by itself (`hands_off_timers`), as the sweeper would.
`run_until_idle` runs everything due now; `advance` moves the clock, running what falls due
in order, and fires each cron task at its scheduled instants (as the sweeper would, on
time); `run_until_complete` skips from wake-up to wake-up until the run ends or waits on
an outside event. A simulated crash (any BaseException that is not a suspension, raised
from a step) kills only that invocation: its message comes back once the lease expires, as
SQS would redeliver it after the visibility timeout. An invocation that ends with an
infrastructure error (DynamoDB, SQS or S3 failing) has its message come back after
`redelivery`, as SQS does with a record the batch reported failed.

With `faults=Faults(...)` (see `durable.faults`) every AWS call the runtime makes may be
throttled, fail, time out or crash the process, as planned: the client operations of the
environment (`trigger`, `send_event`, ...) meet them like any API caller and may raise
`InfrastructureError` or `SimulatedCrash` (retry them); its reads (`get`, `list`,
`history`) and the clock are left alone.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from durable.blobs.base import BlobStore
from durable.blobs.memory import MemoryBlobStore
from durable.client import Client, HistoryEntry, RunInfoView, RunList
from durable.clock import VirtualClock
from durable.errors import InfrastructureError
from durable.faults import Faults, FaultyAdapter, SimulatedCrash, injected_into_botocore
from durable.logs import RunLogCapture
from durable.moto_backend import MOTO_INDEX_SHARDS, MotoBackend, serialize_moto_requests
from durable.queues.base import WakeQueue
from durable.queues.memory import MemoryWakeQueue
from durable.records import RunStatus, WakeReason, WakeUp
from durable.runlogs import DEFAULT_LIMIT, LogPage, MemoryRunLogSource
from durable.services.purge import PURGE_THREADS
from durable.services.runs import RunHandle
from durable.services.schedules import DEFAULT_LOOKBACK
from durable.storage.base import RunStore
from durable.storage.memory import MemoryRunStore
from durable.task import TaskDefinition, TaskRegistry, default_registry
from durable.values import DEFAULT_INLINE_LIMIT, ValueCodec
from durable.worker import Handled, Worker, WorkerConfig

Backend = Literal["memory", "moto"]
__all__ = [
    "Backend",
    "Faults",
    "MotoBackend",
    "SimulatedCrash",
    "TestEnvironment",
    "serialize_moto_requests",
]

# The store's methods that stand for DynamoDB calls (faults on the memory backend).
_STORE_OPERATIONS = {
    "claim_purge_lease",
    "release_purge_lease",
    "create_run",
    "get_run",
    "acquire_lease",
    "update_run",
    "append_checkpoint",
    "load_history",
    "put_inbox",
    "list_inbox",
    "delete_inbox",
    "claim_event_id",
    "list_runs",
    "due_runs",
    "expired_runs",
    "delete_run",
    "put_callback",
    "claim_callback",
    "callback_outcome",
    "create_batch",
    "get_batch",
    "record_batch_result",
    "list_batch_results",
    "add_stats",
    "read_stats",
    "acquire_slot",
    "release_slot",
    "drop_holder",
    "slot_holders",
    "add_waiter",
    "remove_waiter",
    "waiters",
    "count_waiters",
    "queue_keys",
    "get_runs",
    "stats_task_ids",
    "count_active",
    "take_rate_place",
    "rate_head",
    "advance_rate_head",
    "debounced_run",
    "create_debounced_run",
    "replace_pending_run",
    "claimed_run",
    "parked_timers",
    "set_timer_parked",
}


class TestEnvironment:
    """A whole durable runtime in this process, on a virtual clock."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        backend: Backend = "memory",
        *,
        registry: TaskRegistry | None = None,
        start: datetime | None = None,
        code_version: str = "test",
        inline_limit: int = DEFAULT_INLINE_LIMIT,
        lease: timedelta = timedelta(minutes=15),
        retention: timedelta | None = None,
        schedules: bool = True,
        schedule_lookback: timedelta = DEFAULT_LOOKBACK,
        faults: Faults | None = None,
        redelivery: timedelta = timedelta(seconds=30),
        moto: MotoBackend | None = None,
        index_shards: int | None = None,
        purge_threads: int = PURGE_THREADS,
    ) -> None:
        if backend not in ("memory", "moto"):
            raise ValueError(f"backend must be 'memory' or 'moto', not {backend!r}")
        self.backend = backend
        self.clock = VirtualClock(start)
        self._start = self.clock.now()  # no schedule fires an instant before it
        self.registry = registry or default_registry
        self.queue = MemoryWakeQueue(self.clock)
        self._code_version = code_version
        self._inline_limit = inline_limit
        self._lease = lease
        self._retention = retention  # finished runs are kept forever unless given
        self._schedules = schedules  # False: `advance` fires no cron task by itself
        self.schedule_lookback = schedule_lookback
        self._moto: MotoBackend | None = None
        self._shared_moto = moto
        self.faults = faults
        self._redelivery = redelivery
        self._index_shards = index_shards  # default: 1 on memory, MotoBackend's on moto
        self._purge_threads = purge_threads
        self._injection: Any = None
        self.invocations = 0
        self.crashes = 0
        self.infrastructure_errors = 0  # invocations that ended with one (then redelivered)
        self.handled: list[tuple[WakeUp, Handled]] = []
        # Parked timers (`durable.services.timers`) are handed off at their moment, as by
        # a sweeper running at every instant, without faults; False leaves them to `sweep`
        # alone, as in AWS (a test of crashes in the hand-off, of the sweeper's schedule).
        self.hands_off_timers = True
        self.store: RunStore
        self.blobs: BlobStore

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> TestEnvironment:
        if self.backend == "memory":
            self.store = MemoryRunStore(index_shards=self._index_shards or 1)
            self.blobs = MemoryBlobStore()
        else:
            self.store, self.blobs = self._start_moto()
        store, queue, blobs = self.store, self._runtime_queue(), self.blobs
        if self.faults is not None:
            # The queue stands in for SQS on both backends (delivery needs the virtual
            # clock): its sends meet the faults as SQS calls would.
            queue = FaultyAdapter(queue, "sqs", self.faults, {"send", "send_many", "send_timed"})
            if self.backend == "moto":
                self._injection = injected_into_botocore(self.faults)
                self._injection.__enter__()
            else:
                store = FaultyAdapter(store, "dynamodb", self.faults, _STORE_OPERATIONS)
                blobs = FaultyAdapter(blobs, "s3", self.faults, {"put", "get"})
        # What the runtime (worker, client, sweeper) talks to; faults apply there.
        self.runtime_store: RunStore = store
        self.runtime_queue: WakeQueue = queue
        codec = ValueCodec(blobs, inline_limit=self._inline_limit)
        self.codec = codec
        # What runs log here, read back by `logs` (CloudWatch's stand-in), at virtual time.
        self.log_source = MemoryRunLogSource()
        self._capture = RunLogCapture(
            lambda record: self.log_source.append(record, int(self.clock.now().timestamp() * 1000))
        )
        logging.getLogger().addHandler(self._capture)
        self._build_runtime()
        return self

    def _build_runtime(self) -> None:
        """The client and worker on the runtime's adapters, for the registry deployed."""
        store, queue, codec, clock = self.runtime_store, self.runtime_queue, self.codec, self.clock
        code_version, retention = self._code_version, self._retention
        self.client = Client(
            store=store, queue=queue, codec=codec, clock=clock, registry=self.registry,
            code_version=code_version, retention=retention, logs=self.log_source
        )  # fmt: skip
        config = WorkerConfig(
            lease=self._lease, retention=retention, code_version=code_version,
            purge_threads=self._purge_threads
        )  # fmt: skip
        self.worker = Worker(
            store=store, queue=queue, codec=codec, clock=clock, registry=self.registry,
            config=config
        )  # fmt: skip

    def deploy(self, registry: TaskRegistry, code_version: str | None = None) -> None:
        """ "Deploy" other code: the worker and client serve `registry` (and `code_version`)
        from now on, on the same store, queue and clock (`durable.worker.holds`)."""
        self.registry = registry
        self._code_version = code_version or self._code_version
        self._build_runtime()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        logging.getLogger().removeHandler(self._capture)
        if self._injection is not None:
            self._injection.__exit__(None, None, None)
            self._injection = None
        if self._moto is not None:
            self._moto.__exit__(None, None, None)
            self._moto = None

    def _start_moto(self) -> tuple[RunStore, BlobStore]:
        if self._shared_moto is not None:
            return self._shared_moto.fresh()
        self._moto = MotoBackend(index_shards=self._index_shards or MOTO_INDEX_SHARDS)
        self._moto.__enter__()
        return self._moto.fresh()

    # -- the client's operations ---------------------------------------------------------

    def trigger(
        self,
        task: TaskDefinition[Any, Any] | str,
        payload: Any = None,
        idempotency_key: str | None = None,
        delay: timedelta | None = None,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key_ttl: timedelta | None = None,
        concurrency_key: str | None = None,
        priority: int = 0,
        ttl: timedelta | None = None,
    ) -> RunHandle[Any]:
        """`Client.trigger`: a run of `task` (its handle or its id)."""
        return self.client.trigger(
            task if isinstance(task, str) else task.id,
            payload,
            idempotency_key=idempotency_key,
            delay=delay,
            tags=tags,
            metadata=metadata,
            idempotency_key_ttl=idempotency_key_ttl,
            concurrency_key=concurrency_key,
            priority=priority,
            ttl=ttl,
        )

    def get(self, run_id: str) -> RunInfoView:
        with self._reading():
            return self.client.get(run_id)

    def _reading(self) -> contextlib.AbstractContextManager[object]:
        """Reads the test makes to look at results: no fault is injected into them."""
        return self.faults.paused() if self.faults is not None else contextlib.nullcontext()

    def _runtime_queue(self) -> WakeQueue:
        return self.queue

    def list(
        self,
        task_id: str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        **filters: Any,
    ) -> RunList:
        """`Client.list`; `filters`: its keyword filters (tag, created and finished ranges)."""
        with self._reading():
            return self.client.list(task_id, status, limit, cursor, values=True, **filters)

    def history(self, run_id: str) -> builtins.list[HistoryEntry]:
        with self._reading():
            return self.client.history(run_id)

    def logs(self, run_id: str, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> LogPage:
        """`Client.logs`: what the run logged here (`ctx.logger` and standard logging)."""
        with self._reading():
            return self.client.logs(run_id, cursor, limit)

    def send_event(
        self, run_id: str, name: str, data: Any = None, event_id: str | None = None
    ) -> None:
        self.client.send_event(run_id, name, data, event_id=event_id)

    def cancel(self, run_id: str) -> RunInfoView:
        return self.client.cancel(run_id)

    def resume(self, run_id: str, by: str = "test") -> RunInfoView:
        """`Client.resume`: let a held run go on (`durable.services.resume`)."""
        return self.client.resume(run_id, by=by)

    def complete_callback(self, token: str, data: Any = None, error: Any = None) -> None:
        self.client.complete_callback(token, data=data, error=error)

    # -- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def deliver(self, message: WakeUp, time_left: Callable[[], timedelta] | None = None) -> Handled:
        """Hand one message to the worker, as the SQS event source mapping would."""
        self.invocations += 1
        try:
            handled = self.worker.handle(message, time_left)
        except SimulatedCrash:
            # The invocation died: SQS redelivers the message once it is visible again,
            # which is after the lease of the dead invocation has run out.
            self.crashes += 1
            self.queue.send(message, min(self._lease + timedelta(seconds=1), self.queue.max_delay))
            return Handled.ABANDONED
        except InfrastructureError:
            # The batch reports the record failed: SQS delivers it again after a while.
            self.infrastructure_errors += 1
            self.queue.send(message, min(self._redelivery, self.queue.max_delay))
            return Handled.ABANDONED
        self.handled.append((message, handled))
        return handled

    def run_until_idle(self, max_invocations: int = 100_000) -> int:
        """Run every message due now (and what they cause now); never moves the clock.

        First the parked timers due within the queue's delay are handed off (see
        `hands_off_timers`), as the sweeper does.
        """
        self._hand_off()
        count = 0
        while True:
            message = self.queue.pop_due(self.clock.now())
            if message is None:
                return count
            self.deliver(message)
            count += 1
            if count >= max_invocations:
                raise RuntimeError(f"still busy after {max_invocations} invocations")

    def advance(self, delta: timedelta) -> None:
        """Move the clock by `delta`, running each wake-up at its own time, in order.

        Each scheduled instant passed on the way fires at that instant, as if the sweeper
        ran then (unless the environment was made with `schedules=False`).
        """
        target = self.clock.now() + delta
        self._fire_and_run()
        while True:
            due = self._next_due()
            if due is None or due > target:
                break
            self.clock.set(due)
            self._fire_and_run()
        self.clock.set(target)
        self._fire_and_run()

    def _hand_off(self) -> None:
        if self.hands_off_timers:
            from durable.services.timers import hand_off_timers

            with self._reading():
                hand_off_timers(self.runtime_store, self.runtime_queue, self.clock)

    def _next_wake(self) -> datetime | None:
        """When the next queued wake-up falls due, or the next parked timer is handed off."""
        due = self.queue.next_due()
        if self.hands_off_timers:
            from durable.services.timers import next_hand_off

            with self._reading():
                hand_off = next_hand_off(self.runtime_store, self.runtime_queue)
            if hand_off is not None:
                hand_off = max(hand_off, self.clock.now())
                due = hand_off if due is None else min(due, hand_off)
        return due

    def _next_due(self) -> datetime | None:
        """The next time something happens: a wake-up (`_next_wake`) or (with schedules) a
        firing."""
        due = self._next_wake()
        if self._schedules:
            from durable.services.schedules import next_firing

            firing = next_firing(self.registry, self.clock.now())
            if firing is not None and (due is None or firing < due):
                return firing
        return due

    def _fire_and_run(self) -> None:
        if self._schedules:
            self.fire_schedules()
        self.run_until_idle()

    def fire_schedules(self) -> builtins.list[RunHandle[Any]]:
        """What each sweep does first: trigger every scheduled instant in the lookback.

        Instants before the environment's start never fire. Returns the runs it started (an
        instant fired before starts nothing); they are queued: `run_until_idle` runs them.
        """
        from durable.services.schedules import fire_due_schedules

        return fire_due_schedules(
            self.client, self.registry, self.clock, self.schedule_lookback, since=self._start
        )

    def run_until_complete(
        self, run_id: str, max_time: timedelta = timedelta(days=366)
    ) -> RunInfoView:
        """Skip the clock from wake-up to wake-up until the run ends or waits on an event.

        A run waiting for an event or a callback stops the skipping even when its wait has a
        timeout: send the event, or `advance` past the timeout to see it expire. A run
        waiting for its child runs goes on until they end.
        """
        limit = self.clock.now() + max_time
        while True:
            self.run_until_idle()
            info = self.client.get(run_id)
            waits_outside = info.waiting_for is not None and not info.waiting_for.startswith(
                ("child:", "batch:", "queue:")
            )
            if info.status.is_terminal or waits_outside:
                return info
            due = self._next_wake()
            if due is None or due > limit:
                return info
            self.clock.set(due)

    def sweep(self) -> int:
        """What the scheduled sweeper does: `fire_schedules`, re-enqueue overdue runs, and
        send a PURGE message for each expiry shard with runs past retention (the workers
        purge them when the queue is run: `run_until_idle`).

        Returns how many runs were re-enqueued.
        """
        from durable.services.purge import send_purge_messages
        from durable.services.sweeper import sweep

        self.fire_schedules()
        sent = sweep(self.runtime_store, self.runtime_queue, self.clock, grace=timedelta(0))
        send_purge_messages(self.runtime_store, self.runtime_queue, self.clock)
        return sent

    def purge(self) -> int:
        """Delete the finished runs whose retention has passed, in this process, serially
        (`durable.services.sweeper.purge_expired`); returns how many."""
        from durable.services.sweeper import purge_expired

        return purge_expired(self.runtime_store, self.clock)

    def send_raw(self, run_id: str, reason: WakeReason, token: str | None = None) -> None:
        """Put a wake-up on the queue by hand (duplicate and late message tests)."""
        self.queue.send(WakeUp(run_id, reason, token))
