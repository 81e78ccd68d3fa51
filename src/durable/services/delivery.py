"""Delivering events and callback completions to a run's inbox, then waking the run.

    send_event / complete_callback ─► put in the inbox ─► mark the run due if it waits
                                                        for it ─► send its wake-up

Rules every delivery honours (the worker's side of them: `durable.worker`, `durable.inbox`):

- The event is stored before anything else: if the call fails half-way (an
  `InfrastructureError`), the sweeper (the run is due) or a retry of the call finishes it.
- A delivery retried with the same id (an `event_id`, or a callback's token) is stored
  once; if the run's log has consumed it meanwhile, the copy a retry stored is taken back.
- A callback completes once: a second, different completion is refused.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from durable.clock import Clock
from durable.errors import (
    CallbackAlreadyCompletedError,
    ConflictError,
    InputError,
    RunFinishedError,
    RunNotFoundError,
)
from durable.ids import new_inbox_id
from durable.inbox import consumed_inbox_ids
from durable.names import callback_wait, event_name
from durable.queues.base import WakeQueue
from durable.records import InboxEvent, RunStatus, WakeReason, WakeUp
from durable.serialization import check_depth
from durable.storage.base import RunStore, token_key
from durable.values import ValueCodec


class InboxDelivery:
    """Puts events and callback completions in runs' inboxes and wakes the runs."""

    def __init__(
        self, *, store: RunStore, queue: WakeQueue, codec: ValueCodec, clock: Clock
    ) -> None:
        self.store = store
        self.queue = queue
        self.codec = codec
        self.clock = clock

    def send_event(
        self, run_id: str, name: str, data: Any = None, event_id: str | None = None
    ) -> None:
        """Deliver event `name` to a run (see `Client.send_event`)."""
        event_name(name)
        check_depth(data, "the event's data")
        if event_id is not None and not 1 <= len(event_id) <= 256:
            raise InputError("event_id must be 1 to 256 characters")
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFoundError(run_id)
        if run.status.is_terminal:
            raise RunFinishedError(run_id, run.status)
        now = self.clock.now()
        fresh_id = new_inbox_id(now)
        inbox_id = fresh_id
        if event_id is not None:
            inbox_id = self.store.claim_event_id(run_id, event_id, fresh_id)
        stored = self.codec.encode(data, f"{run_id}/inbox/{inbox_id}")
        try:
            self.store.put_inbox(
                InboxEvent(
                    run_id=run_id, inbox_id=inbox_id, name=name, data=stored, received_at=now
                )
            )
        except ConflictError:
            if event_id is None:
                raise
            # Stored by an earlier try of this send, which may have died before waking.
        else:
            if inbox_id != fresh_id and self._taken_back(run_id, inbox_id):
                return  # an earlier try delivered it, and the run consumed it already
        self._wake_waiting(run_id, name, now)

    def complete_callback(self, token: str, data: Any = None, error: Any = None) -> None:
        """Complete a callback once (see `Client.complete_callback`)."""
        now = self.clock.now()
        outcome = {"error": error} if error is not None else {"data": data}
        check_depth(outcome, "the callback's data")
        key = token_key(token)
        stored = self.codec.encode(outcome, f"callbacks/{key[:24]}")
        retry = False
        try:
            run_id = self.store.claim_callback(token, now, stored)
        except CallbackAlreadyCompletedError:
            # The same completion again, whose first try died between claiming the token and
            # delivering it, is delivered now; any other second completion is refused.
            claimed = self.store.callback_outcome(token)
            if claimed is None or claimed[1] != stored:
                raise
            run_id, retry = claimed[0], True
        event = InboxEvent(
            run_id=run_id,
            inbox_id=f"cb-{key[:32]}",  # one delivery per token, whoever writes it
            name=callback_wait(token),
            data=stored,
            received_at=now,
        )
        try:
            self.store.put_inbox(event)
        except ConflictError:
            if retry:
                # Delivered by an earlier try, which may have died before waking the run.
                self._wake_waiting(run_id, event.name, now)
                raise CallbackAlreadyCompletedError("this callback was completed already") from None
        else:
            if retry and self._taken_back(run_id, event.inbox_id):
                raise CallbackAlreadyCompletedError("this callback was completed already")
        self._wake_waiting(run_id, event.name, now)

    def _taken_back(self, run_id: str, inbox_id: str) -> bool:
        """After a retried delivery stored its event again: if the run's log has consumed
        it (and its inbox item was deleted, see `durable.inbox`), delete the copy; whether
        it had. Only retries of a delivery that got through come here."""
        if inbox_id not in consumed_inbox_ids(self.store.load_history(run_id)):
            return False
        self.store.delete_inbox(run_id, [inbox_id])
        return True

    def _wake_waiting(self, run_id: str, waiting_for: str, now: datetime) -> None:
        """Mark the run due if it waits for `waiting_for`, then send it a wake-up.

        The mark makes the wake-up one the sweeper sees: a lost message is sent again.
        """
        with contextlib.suppress(ConflictError, RunNotFoundError):
            self.store.update_run(
                run_id,
                {"wake_at": now},
                expect_status=[RunStatus.WAITING],
                expect_waiting_for=waiting_for,
            )
        self.queue.send(WakeUp(run_id, WakeReason.EVENT))
