"""A run's timeline: its log turned into bars on a time axis (`GET /runs/{id}/timeline`).

`build_timeline` reads nothing: it takes the run record, its checkpoints and the batch
records of its fan-outs (the caller reads those, one item a batch) and returns the JSON
shape the run page draws: task attempts as bands; one operation per durable call, in
position order, with step attempts and the labelled backoff gaps between them, what
ended each wait (timer, event, callback, timeout), child run ids, batch progress. Each
step attempt carries its `input` (the argument preview its end recorded), and a step its
latest attempt's.
Callback tokens are redacted here for every view (`redacted_token`, `redacted_wait`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from durable.engine.replay import COMPENSATION_PREFIX
from durable.ids import child_run_id
from durable.records import (
    HOLD_NONDETERMINISM,
    HOLD_UNKNOWN_TASK,
    BatchRecord,
    Checkpoint,
    CheckpointKind,
    ErrorInfo,
    RunRecord,
    RunStatus,
)
from durable.timeline_actions import OUTCOME as _ATTEMPT_OUTCOME
from durable.timeline_actions import actions, retried_end, retry_starts

K = CheckpointKind
BATCH_IDS_SHOWN = 100  # a batch lists the run ids of its first children only

Decode = Callable[[str], Any]
Json = dict[str, Any]


def redacted_token(token: Any) -> str:
    """A callback token as callers may see it: enough to tell tokens apart, not to use one."""
    return f"{str(token)[:6]}…"


def redacted_wait(waiting_for: str | None) -> str | None:
    """A run's `waiting_for` as callers may see it (a callback's hash shortened)."""
    if waiting_for is not None and waiting_for.startswith("callback:"):
        return "callback:" + redacted_token(waiting_for.removeprefix("callback:"))
    return waiting_for


def decoded_input(text: str | None) -> Any:
    """A step end's recorded input (`Checkpoint.input`) as JSON values; None when absent."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:  # written by no version of this library: shown, not fatal
        return {"omitted": "unreadable input preview"}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _error(error: ErrorInfo | None) -> Json | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def build_timeline(
    run: RunRecord,
    checkpoints: list[Checkpoint],
    decode: Decode,
    now: datetime,
    batches: Mapping[tuple[int, int], BatchRecord] | None = None,
) -> Json:
    """The timeline of `run` (see CONTRACTS: `GET /runs/{run_id}/timeline`), with its audit
    entries as `actions` (`durable.timeline_actions`).

    `decode` turns a stored value into JSON values; `batches` maps (task attempt, position)
    to the batch record of each fan-out, when the caller has read them.
    """
    terminal = run.status.is_terminal
    groups: dict[tuple[int, int], list[Checkpoint]] = {}
    for cp in checkpoints:
        if cp.op >= 0:
            groups.setdefault((cp.task_attempt, cp.op), []).append(cp)
    builder = _Operations(run, decode, now, batches or {})
    operations = builder.build(groups)
    return {
        "run_id": run.run_id,
        "task_id": run.task_id,
        "status": str(run.status),
        "now": _iso(now),
        "live": not terminal,
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "waiting": waiting(run, operations),
        "attempts": _task_attempts(run, checkpoints),
        "operations": operations,
        "actions": actions(checkpoints),
    }


def _task_attempts(run: RunRecord, checkpoints: list[Checkpoint]) -> list[Json]:
    failures = {cp.task_attempt: cp for cp in checkpoints if cp.kind is K.ATTEMPT_FAILED}
    first_at: dict[int, datetime] = {}
    for cp in checkpoints:
        first_at.setdefault(cp.task_attempt, cp.at)
    retries = retry_starts(checkpoints)
    bands: list[Json] = []
    previous: Checkpoint | None = None
    for number in range(1, run.attempt + 1):
        if number == 1:
            start = run.started_at or first_at.get(1)
        elif number in retries:
            start = retries[number].at
        else:
            start = previous.wake_at if previous is not None else first_at.get(number)
            if number in first_at and (start is None or first_at[number] < start):
                start = first_at[number]
        failure = failures.get(number)
        band: Json = {"task_attempt": number, "started_at": _iso(start)}
        if failure is None and number + 1 in retries:
            band = retried_end(band, retries[number + 1])
        elif failure is not None:
            band |= {
                "ended_at": _iso(failure.at),
                "outcome": "failed",
                "error": _error(failure.error),
                "retry_at": _iso(failure.wake_at),
            }
        else:
            ended = run.finished_at if run.status.is_terminal else None
            band |= {
                "ended_at": _iso(ended),
                "outcome": _ATTEMPT_OUTCOME.get(run.status, "waiting"),
                "error": _error(run.error) if run.status.is_terminal else None,
                "retry_at": None,
            }
        bands.append(band)
        previous = failure
    return bands


def waiting(run: RunRecord, operations: list[Json] | None = None) -> Json | None:
    """What a run that is not running waits for, and until when; None for other runs."""
    status, until, wait = run.status, run.wake_at, run.waiting_for
    if status is RunStatus.RETRYING:
        what, text = "retry", "waits to retry"
    elif status is RunStatus.QUEUED and wait is not None and wait.startswith("repair:"):
        action = wait.removeprefix("repair:")  # `durable.services.repair`'s setup
        what, text = wait, f"waits for its {action} to be finished (call it again)"
    elif status is RunStatus.QUEUED and wait is not None and wait.startswith("queue:"):
        what, text = wait, f"waits for a slot in queue {wait.removeprefix('queue:')}"
    elif status is RunStatus.QUEUED and wait is not None and wait.startswith("rate:"):
        queue = wait.removeprefix("rate:")
        what, text = wait, f"waits for its turn under queue {queue}'s rate limit"
    elif status is RunStatus.QUEUED:
        what, text = "start", "waits to start"
    elif status is not RunStatus.WAITING:
        return None
    elif wait is None:
        sleeping = [op for op in operations or [] if op["kind"] == "sleep"]
        name = sleeping[-1]["name"] if sleeping else ""
        what, text = f"sleep:{name}", f'sleeps ("{name}")'
    elif wait.startswith("callback:"):
        what = redacted_wait(wait) or wait
        text = f"waits for callback {what.removeprefix('callback:')}"
    elif wait.startswith("child:"):
        what, text = wait, f"waits for child run {wait.removeprefix('child:')}"
    elif wait.startswith("batch:"):
        what, text = wait, "waits for its batch of child runs"
    elif wait.startswith("code-version:"):
        what, text = wait, f"waits for code version {wait.removeprefix('code-version:')}"
    elif wait == HOLD_NONDETERMINISM:
        what, text = wait, "is held: its replay diverged from its log (deploy a fix, or resume it)"
    elif wait == HOLD_UNKNOWN_TASK:
        what, text = wait, "is held: the deployed code has no such task (deploy it, or cancel)"
    else:
        what, text = f"event:{wait}", f'waits for event "{wait}"'
    if until is not None:
        text += f" until {until.strftime('%Y-%m-%d %H:%M:%SZ')}"
    return {"for": what, "until": _iso(until), "description": text}


class _Operations:
    """The operations of a run's log, one per (task attempt, position)."""

    def __init__(
        self,
        run: RunRecord,
        decode: Decode,
        now: datetime,
        batches: Mapping[tuple[int, int], BatchRecord],
    ) -> None:
        self.run = run
        self.decode = decode
        self.now = now
        self.batches = batches
        self.terminal = run.status.is_terminal
        # The instant time stops for a run: its end, or now.
        self.horizon = run.finished_at if self.terminal and run.finished_at else now

    def build(self, groups: dict[tuple[int, int], list[Checkpoint]]) -> list[Json]:
        keys = sorted(groups)
        # A callback's wait (its own position) is drawn on its create's bar.
        waits = {
            key: groups[key] for key in keys if groups[key][0].operation_kind == "callback_wait"
        }
        operations: list[Json] = []
        for index, key in enumerate(keys):
            entries = groups[key]
            kind = entries[0].operation_kind
            if kind == "callback_wait":
                continue
            later = any(other[0] == key[0] for other in keys[index + 1 :])
            if kind == "callback":
                wait_key = next(
                    (
                        k
                        for k in waits
                        if k[0] == key[0] and k > key and waits[k][0].name == entries[0].name
                    ),
                    None,
                )
                wait_entries = waits.pop(wait_key) if wait_key is not None else []
                operations.append(self._callback(key, entries, wait_entries))
            else:
                operations.append(self._operation(key, kind, entries, later))
        for key, entries in waits.items():  # a wait whose create was not found
            operations.append(self._callback(key, [], entries))
        operations.sort(key=lambda op: (op["task_attempt"], op["position"]))
        return operations

    def _base(self, key: tuple[int, int], kind: str, entries: list[Checkpoint]) -> Json:
        first = entries[0]
        return {
            "id": f"{key[0]}.{key[1]}",
            "position": key[1],
            "task_attempt": key[0],
            "kind": kind,
            "name": first.name,
            "status": "completed",
            "started_at": _iso(first.at),
            "ended_at": _iso(first.at),
            "ended_by": None,
            "wake_at": None,
            "value": None,
            "error": None,
            "child_run_id": None,
            "batch": None,
            "attempts": [],
            "gaps": [],
            "input": None,
            "seqs": [cp.seq for cp in entries],
        }

    def _value(self, cp: Checkpoint) -> Any:
        return self.decode(cp.value) if cp.value is not None else None

    def _pending(self, op: Json, status: str) -> Json:
        """An operation that has not ended: waiting (or retrying) while the run lives."""
        if self.terminal:
            op |= {"status": "failed", "ended_at": _iso(self.run.finished_at)}
        else:
            op |= {"status": status, "ended_at": None}
        return op

    def _operation(
        self, key: tuple[int, int], kind: str, entries: list[Checkpoint], later: bool
    ) -> Json:
        if kind == "step":
            return self._step(key, entries)
        op = self._base(key, kind, entries)
        last = entries[-1]
        if kind == "sleep":
            wake_at = entries[0].wake_at
            op["wake_at"] = _iso(wake_at)
            if wake_at is not None and (later or wake_at <= self.horizon):
                return op | {"ended_at": _iso(wake_at), "ended_by": "timer"}
            return self._pending(op, "waiting")
        if kind == "wait_for_event":
            op["wake_at"] = _iso(entries[0].wake_at if entries[0].kind is K.WAIT_STARTED else None)
            if last.kind is K.EVENT_RECEIVED:
                return op | {
                    "ended_at": _iso(last.at),
                    "ended_by": "event",
                    "value": self._value(last),
                }
            if last.kind is K.WAIT_TIMED_OUT:
                return op | {"ended_at": _iso(last.at), "ended_by": "timeout", "status": "failed"}
            return self._pending(op, "waiting")
        if kind in ("invoke", "trigger"):
            child = self._value(entries[0])
            op["child_run_id"] = child if isinstance(child, str) else None
            if kind == "trigger":
                return op
            if last.kind is K.CHILD_COMPLETED:
                return op | {
                    "ended_at": _iso(last.at),
                    "ended_by": "completed",
                    "value": self._value(last),
                }
            if last.kind is K.CHILD_FAILED:
                return op | {
                    "ended_at": _iso(last.at),
                    "ended_by": "error",
                    "status": "failed",
                    "error": _error(last.error),
                }
            return self._pending(op, "waiting")
        if kind == "batch":
            op["batch"] = self._batch(key, entries)
            if last.kind is K.BATCH_COMPLETED:
                return op | {"ended_at": _iso(last.at), "ended_by": "completed"}
            if last.kind is K.BATCH_FAILED:
                return op | {"ended_at": _iso(last.at), "ended_by": "error", "status": "failed"}
            return self._pending(op, "waiting")
        # value, patch: instants.
        return op | {"value": self._value(last)}

    def _callback(
        self, key: tuple[int, int], created: list[Checkpoint], ended: list[Checkpoint]
    ) -> Json:
        op = self._base(key, "callback", created or ended)
        op["seqs"] = [cp.seq for cp in created + ended]
        if created:
            op["wake_at"] = _iso(created[0].wake_at)
            op["token"] = redacted_token(self._value(created[0]))
        if not ended:
            return self._pending(op, "waiting")
        last = ended[-1]
        op["ended_at"] = _iso(last.at)
        if last.kind is K.CALLBACK_COMPLETED:
            return op | {"ended_by": "callback", "value": self._value(last)}
        if last.kind is K.CALLBACK_FAILED:
            return op | {"ended_by": "error", "status": "failed", "error": _error(last.error)}
        return op | {"ended_by": "timeout", "status": "failed"}

    def _batch(self, key: tuple[int, int], entries: list[Checkpoint]) -> Json:
        stored = self.batches.get(key)
        if stored is not None:
            total, succeeded, failed = stored.total, stored.succeeded, stored.failed
            started = min(total, succeeded + failed + stored.max_concurrency)
        else:  # the batch record is gone: what the log says
            started_value = self._value(entries[0])
            end_value = self._value(entries[-1]) if len(entries) > 1 else None
            total = _int_field(started_value, "total")
            succeeded = _int_field(end_value, "succeeded")
            failed = _int_field(end_value, "failed")
            started = total if len(entries) > 1 else 0
        run_id = self.run.run_id
        ids = [
            child_run_id(run_id, key[0], key[1], index)
            for index in range(min(started, BATCH_IDS_SHOWN))
        ]
        return {"total": total, "completed": succeeded, "failed": failed, "child_run_ids": ids}

    def _step(self, key: tuple[int, int], entries: list[Checkpoint]) -> Json:
        name = entries[0].name
        kind = "compensation" if name.startswith(COMPENSATION_PREFIX) else "step"
        op = self._base(key, kind, entries)
        attempts: dict[int, Json] = {}
        for cp in entries:
            if cp.kind is K.STEP_HEARTBEAT:
                continue
            bar = attempts.setdefault(
                cp.step_attempt,
                {
                    "attempt": cp.step_attempt,
                    "task_attempt": cp.task_attempt,
                    "started_at": None,
                    "ended_at": None,
                    "outcome": "running",
                    "error": None,
                    "retry_at": None,
                    "input": None,
                },
            )
            if cp.kind is K.STEP_STARTED:
                bar["started_at"] = _iso(cp.at)
                continue
            bar["started_at"] = _iso(cp.started_at) or bar["started_at"]
            bar["ended_at"] = _iso(cp.at)
            bar["input"] = decoded_input(cp.input)
            if cp.kind is K.STEP_COMPLETED:
                bar["outcome"] = "completed"
                op["value"] = self._value(cp)
            else:
                bar |= {
                    "outcome": "failed",
                    "error": _error(cp.error),
                    "retry_at": _iso(cp.wake_at),
                }
        bars = [attempts[number] for number in sorted(attempts)]
        op["attempts"] = bars
        op["gaps"] = _gaps(bars)
        recorded = [bar["input"] for bar in bars if bar["input"] is not None]
        op["input"] = recorded[-1] if recorded else None
        starts = [bar["started_at"] for bar in bars if bar["started_at"]]
        op["started_at"] = starts[0] if starts else _iso(entries[0].at)
        last = bars[-1] if bars else None
        if last is None or last["outcome"] == "running":
            op = self._pending(op, "running")
            if self.terminal and last is not None:
                last |= {"outcome": "failed", "ended_at": _iso(self.run.finished_at)}
            return op
        op["ended_at"] = last["ended_at"]
        if last["outcome"] == "completed":
            return op | {"ended_by": "completed"}
        op |= {"error": last["error"], "ended_by": "error", "status": "failed"}
        if last["retry_at"] is not None and not self.terminal:
            op |= {
                "status": "retrying",
                "ended_at": None,
                "ended_by": None,
                "wake_at": last["retry_at"],
            }
        return op


def _gaps(bars: list[Json]) -> list[Json]:
    """The backoff between step attempts: from a failed attempt's end to the next's start
    (or, while waiting for it, to its retry instant), labelled with the policy's delay."""
    gaps: list[Json] = []
    for index, bar in enumerate(bars):
        if bar["outcome"] != "failed" or bar["retry_at"] is None or bar["ended_at"] is None:
            continue
        ended = datetime.fromisoformat(bar["ended_at"])
        retry_at = datetime.fromisoformat(bar["retry_at"])
        following = bars[index + 1] if index + 1 < len(bars) else None
        until = (
            following["started_at"] if following and following["started_at"] else bar["retry_at"]
        )
        delay = (retry_at - ended).total_seconds()
        gaps.append(
            {
                "after_attempt": bar["attempt"],
                "from": bar["ended_at"],
                "until": until,
                "retry_at": bar["retry_at"],
                "seconds": delay,
                "label": f"backoff {delay:.1f} s",
            }
        )
    return gaps


def _int_field(value: Any, name: str) -> int:
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, int) else 0
