"""`ctx.create_callback` and `ctx.wait_for_callback`: wait for an outside system's answer.

Log entries: `callback_created` (the token, and its expiry) at the create's position;
`callback_completed` (the data), `callback_failed` (the error) or `callback_timed_out` at
the wait's. Replay rule: a recorded token is reused (never a second token), a recorded
end is returned or raised again. The outside system answers with
`POST /callbacks/{token}`, which lands in the run's inbox; each answer is consumed once.
"""

from __future__ import annotations

from datetime import timedelta

from durable.errors import CallbackFailedError, WaitTimeoutError
from durable.ids import new_callback_token
from durable.names import callback_wait
from durable.operations.attempt import Attempt
from durable.records import Checkpoint, CheckpointKind, ErrorInfo, RunStatus
from durable.serialization import JsonData, dumps, loads


def create_callback(attempt: Attempt, name: str, timeout: timedelta | None) -> str:
    """A fresh single-use token (or the recorded one), registered for this run."""
    position, entries = attempt.open("callback", name)
    if entries:
        token = str(loads(entries[0].value or "null"))
        attempt.callback_expiries[token] = entries[0].wake_at
        return token
    attempt.before_fresh_operation()
    token = new_callback_token()
    expires_at = attempt.clock.now() + timeout if timeout is not None else None
    attempt.environment.create_callback(token, attempt.run.id, name, expires_at)
    attempt.callback_expiries[token] = expires_at
    attempt.record(
        CheckpointKind.CALLBACK_CREATED, position, name, value=dumps(token), wake_at=expires_at
    )
    return token


class CallbackWait:
    """A wait for a callback, opened (its position taken) when it is called and resolved
    once the token has been handed over: an async task's submit step runs in between."""

    def __init__(self, attempt: Attempt, name: str, token: str) -> None:
        self.attempt = attempt
        self.name = name
        self.token = token
        self.expires_at = attempt.callback_expiries.get(token)
        self.position, self.entries = attempt.open("callback_wait", name)

    def resolve(self) -> JsonData:
        """The callback's data; suspends until it comes, raises on its error or timeout."""
        attempt, name, position = self.attempt, self.name, self.position
        recorded = _recorded_end(self.entries, name, attempt)
        if recorded is not _NOT_ENDED:
            return recorded
        inbox_name = callback_wait(self.token)
        event = attempt.next_unconsumed_event(inbox_name)
        if event is not None:
            outcome = attempt.codec.decode(event.data)
            if isinstance(outcome, dict) and "error" in outcome:
                message = dumps(outcome["error"])
                attempt.record(
                    CheckpointKind.CALLBACK_FAILED,
                    position,
                    name,
                    error=ErrorInfo(type="CallbackFailedError", message=message),
                    inbox_id=event.inbox_id,
                )
                attempt.inbox_ledger().consume(event)
                raise CallbackFailedError(name, message)
            data = outcome.get("data") if isinstance(outcome, dict) else None
            attempt.record(
                CheckpointKind.CALLBACK_COMPLETED,
                position,
                name,
                value=dumps(data),
                inbox_id=event.inbox_id,
            )
            attempt.inbox_ledger().consume(event)
            return data
        if self.expires_at is not None and attempt.clock.now() >= self.expires_at:
            attempt.record(CheckpointKind.CALLBACK_TIMED_OUT, position, name)
            raise WaitTimeoutError(name)
        raise attempt.suspend_until(RunStatus.WAITING, self.expires_at, waiting_for=inbox_name)


_NOT_ENDED = object()


def _recorded_end(entries: list[Checkpoint], name: str, attempt: Attempt) -> JsonData:
    """What a recorded end of the wait answers, or _NOT_ENDED."""
    for entry in entries:
        if entry.kind is CheckpointKind.CALLBACK_COMPLETED:
            assert entry.value is not None
            return attempt.codec.decode(entry.value)
        if entry.kind is CheckpointKind.CALLBACK_FAILED:
            assert entry.error is not None
            raise CallbackFailedError(name, entry.error.message)
        if entry.kind is CheckpointKind.CALLBACK_TIMED_OUT:
            raise WaitTimeoutError(name)
    return _NOT_ENDED
