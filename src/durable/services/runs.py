"""Starting runs: the one way a run comes to exist, whoever asks for it.

`Client.trigger`, a parent's `ctx.invoke`/`ctx.trigger` (through the worker), a batch
starting its children (`durable.services.batches`) and the sweeper firing a schedule
(`durable.services.schedules`) all start runs here, on the ports alone (store, queue, codec).

Rules every start honours:

- Validated first, stored never on bad input: an unknown task raises `UnknownTaskError`, a
  payload that does not fit the task's annotation `PayloadValidationError`, a value over
  6 MB `PayloadTooLargeError`.
- The run is stored, then its wake-up sent. A start that dies between the two leaves a
  QUEUED run whose `wake_at` is due: the sweeper sends it, or a retried start with the same
  idempotency key sends it at once.
- The same idempotency key gives the same run; with another payload it is refused
  (`IdempotencyConflictError`). A key given with a TTL (`idempotency_key_ttl`: the
  client's and the API's keys, 24 h by default) holds until `created_at + ttl`; a trigger
  after that starts a new run under it (the store replaces the expired claim atomically)
  and leaves the old run as it is. The keys the library makes (a child's, a batch
  item's, a schedule's firing) are given no TTL: they never expire while their run lives.
  A run id given by the caller (a batch child's, derived from its slot) that exists
  already is found, not started twice.
- A start delayed further than the queue's longest delay is parked in the same write
  and sent by the sweeper on time (`durable.services.timers`); a nearer one is sent
  delayed.
- Tags and metadata are checked (`durable.services.labels`) before anything is stored.
- A task's queue may hold its start back (`durable.services.admission`): a rate limit
  takes a place in a window and delays the start to it; a debounced queue's trigger
  replaces the run still pending for its key. `start_by` (the ttl's end) runs from the
  start asked for, not from the one a limit gives (`durable.services.expiry`).
- A queue with a `max_size` refuses a start (`QueueFullError`, nothing stored) when that
  many runs wait for a slot under its concurrency key: one count of the key's waiter items
  (`durable.services.slots`), stopping at `max_size`. Triggers racing each other can pass
  the limit by as many as race; a retried trigger with an idempotency key is refused too
  while the queue is full. A run's children (`ctx.invoke`, `ctx.trigger`, `ctx.map`) are
  never refused: a parent's call must not fail because of its child's queue. A scheduled
  firing refused is tried again by the next sweeps while it is within their lookback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from durable.clock import Clock
from durable.errors import ConflictError, IdempotencyConflictError, InputError, QueueFullError
from durable.flow import checked_concurrency_key, checked_priority, checked_ttl
from durable.ids import new_run_id
from durable.queues.base import WakeQueue
from durable.records import RunRecord, RunStatus, WakeReason, WakeUp
from durable.serialization import check_depth, dumps, loads
from durable.services.admission import admitted_start, trigger_debounced
from durable.services.labels import checked_metadata, checked_tags
from durable.services.stats import count_started
from durable.services.timers import parks
from durable.storage.base import RunStore
from durable.task import TaskRegistry
from durable.values import ValueCodec

ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class RunHandle(Generic[ResultT]):
    """What `trigger` returns: the run's id, its status, and whether this call created it.

    Typed by the task's result: `Client.result(handle)` returns it as that type (a model
    is revived from the stored JSON), as Temporal's workflow handles do.
    """

    run_id: str
    status: RunStatus
    created: bool
    result_annotation: Any = field(default=Any, compare=False, repr=False)


class RunStarter:
    """Starts runs of the tasks of one registry, recording `code_version` on each."""

    def __init__(
        self,
        *,
        store: RunStore,
        queue: WakeQueue,
        codec: ValueCodec,
        clock: Clock,
        registry: TaskRegistry,
        code_version: str = "dev",
    ) -> None:
        self.store = store
        self.queue = queue
        self.codec = codec
        self.clock = clock
        self.registry = registry
        self.code_version = code_version

    def trigger(
        self,
        task_id: str,
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
        """Start a run of `task_id` (see `Client.trigger`)."""
        definition = self.registry.get(task_id)
        if delay is not None and delay < timedelta(0):
            raise ValueError("delay must not be negative")
        if idempotency_key_ttl is not None and idempotency_key_ttl <= timedelta(0):
            raise InputError("idempotency_key_ttl must be positive")
        run_tags = checked_tags(tags)
        run_metadata = checked_metadata(metadata)
        concurrency_key = checked_concurrency_key(concurrency_key)
        priority = checked_priority(priority)
        ttl = checked_ttl(ttl)
        if started_at is not None and started_at.tzinfo is None:
            raise ValueError("started_at must be timezone-aware")
        value = definition.validate_payload(payload)
        check_depth(value, "the payload")
        limits = definition.queue
        if limits is not None and limits.max_size is not None and parent_run_id is None:
            name, size = limits.name, limits.max_size
            if self.store.count_waiters(name, concurrency_key, size) >= size:
                raise QueueFullError(name, concurrency_key, size)
        now = self.clock.now()
        given_run_id = run_id  # a batch child's: it may exist already
        run_id = run_id or new_run_id(now)
        stored_payload = self.codec.encode(value, f"{run_id}/payload")
        requested = now + delay if delay else now  # the start asked for; the ttl runs from it
        flow = definition.queue
        # Debounce is for callers' triggers: a child, a batch item or a schedule's firing
        # (the starts the library makes, each under its own key) starts its own run.
        made_here = parent_run_id is not None or started_at is not None or batch_slot is not None
        debounce = flow.debounce if flow is not None and not made_here else None
        if debounce is not None and idempotency_key is not None:
            raise InputError(f"task {task_id!r} is debounced: a trigger takes no idempotency key")
        # A place in the queue's rate windows, if it has a rate limit (`services.admission`).
        start, waits_for = admitted_start(
            self.store, flow, task_id, requested, now, debounce=debounce, ttl=ttl,
            concurrency_key=concurrency_key, idempotency_key=idempotency_key,
            given_run_id=given_run_id,
        )  # fmt: skip
        delay = start - now if start > requested else delay
        wake_at = now + delay if delay else now
        token = "start" if delay else None
        parked = parks(wake_at, now, self.queue)  # a far start: the sweeper sends it
        run = RunRecord(
            run_id=run_id,
            task_id=task_id,
            status=RunStatus.QUEUED,
            payload=stored_payload,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
            task_version=definition.version,
            code_version=self.code_version,
            wake_at=wake_at,
            wake_token=token,
            wake_parked=parked,
            parent_run_id=parent_run_id,
            batch_slot=batch_slot,
            started_at=started_at.astimezone(UTC) if started_at is not None else None,
            tags=run_tags,
            metadata=run_metadata,
            queue=definition.queue_name,
            concurrency_key=concurrency_key,
            priority=priority,
            start_by=requested + ttl if ttl is not None else None,
            waiting_for=waits_for,
            idempotency_expires_at=(
                now + idempotency_key_ttl
                if idempotency_key is not None and idempotency_key_ttl is not None
                else None
            ),
        )
        if debounce is not None:
            assert flow is not None  # `debounce` is its queue's
            stored, created = trigger_debounced(
                self.store, self.queue, self.codec, run, value, flow, now
            )
            if created:
                count_started(self.store, self.clock, stored)
            return RunHandle(stored.run_id, stored.status, created, definition.result_annotation)
        try:
            stored, created = self.store.create_run(run)
        except ConflictError:
            # A run id given by the caller (a batch child) that exists: started already.
            existing = self.store.get_run(run_id)
            if existing is None:
                raise
            return RunHandle(existing.run_id, existing.status, False, definition.result_annotation)
        if not created and idempotency_key is not None:
            self._same_payload(stored, task_id, idempotency_key, value)
            if (
                stored.status is RunStatus.QUEUED
                and stored.wake_at is not None
                and (stored.wake_at <= now and stored.started_at is None)
            ):
                # A retried trigger whose first try died between storing the run and
                # sending its wake-up: send it now rather than wait for the sweeper.
                self.queue.send(WakeUp(stored.run_id, WakeReason.START))
        if created:
            if not delay:
                self.queue.send(WakeUp(run_id, WakeReason.START))
            elif not parked:  # a parked start is sent by the sweeper, on time
                self.queue.send(WakeUp(run_id, WakeReason.TIMER, token), delay)
            count_started(self.store, self.clock, stored)  # best effort, after the run's writes
        return RunHandle(stored.run_id, stored.status, created, definition.result_annotation)

    def _same_payload(self, run: RunRecord, task_id: str, key: str, value: Any) -> None:
        """A key reused with another payload is refused, naming the run it started."""
        if self.codec.decode(run.payload) != loads(dumps(value)):
            raise IdempotencyConflictError(task_id, key, run.run_id)
