"""Where a run's log may be cut for a fork, and what a fork copies (`durable.services.repair`).

A fork copies the original's first N log entries ("from step N") as the replay view of an
attempt standing right after entry N sees them, and runs the rest against today's code:

- The copy is one task attempt: for each operation, the entries the view answers it with
  (the latest attempt's that got there), in log order, renumbered from 1 with task attempt
  1. Attempt failures, retries and audit entries (op -1) are not copied: the fork starts
  with a fresh attempt budget and a fresh task timeout, from its own first invocation.
- A cut must leave every copied operation ended: a step completed or failed for good, a
  sleep or a wait started (the fork waits on its own inbox), an event received, a value or
  patch recorded, a child run's end recorded, a triggered child. Refused (with the valid
  cut points near it): a step started or retrying without its end; a child run waited for
  without its end (the fork would wait for the original's child); a callback created whose
  wait has not ended (its token answers the original); and any fan-out (`ctx.map`,
  `ctx.parallel`), whose children's results are kept with the original run and purged
  with it: fork from before it, and the fork runs the fan-out again.
- Values are referenced, not copied: an entry whose value is in S3 points at the
  original's object, which the bucket's lifecycle (`LargeValueRetentionDays`) expires
  counting from when the original wrote it. An inbox id is kept (it marks an event the
  original consumed, which the fork's inbox never holds).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from durable.engine.replay import SETTLED_KINDS, HistoryView
from durable.errors import InvalidForkPointError
from durable.records import Checkpoint, CheckpointKind

K = CheckpointKind
# Ends of an operation beside the settled ones: what a replay raises again.
_FAILED_ENDS = frozenset({K.CHILD_FAILED, K.CALLBACK_FAILED, K.WAIT_TIMED_OUT})
_CALLBACK_ENDS = frozenset({K.CALLBACK_COMPLETED, K.CALLBACK_FAILED, K.CALLBACK_TIMED_OUT})
# How far from a refused cut the valid ones offered instead are looked for (entries).
NEAR = 50
OFFERED = 3


def cut_of(run_id: str, history: list[Checkpoint], from_step: int | str) -> int:
    """The number of entries a fork copies: `from_step` itself, or for a step's name the
    entries before that step's first one. `InvalidForkPointError` when out of the log."""
    last = history[-1].seq if history else 0
    if isinstance(from_step, str):
        for cp in history:
            if cp.op >= 0 and cp.name == from_step:
                return cp.seq - 1
        names = sorted({cp.name for cp in history if cp.op >= 0})
        raise InvalidForkPointError(
            run_id,
            f"run {run_id} has no operation named {from_step!r} "
            f"(its operations: {', '.join(repr(name) for name in names[:20]) or 'none'})",
            valid_cuts(run_id, history, 0),
        )
    if not 0 <= from_step <= last:
        raise InvalidForkPointError(
            run_id,
            f"from_step {from_step} is outside run {run_id}'s log (0 to {last} entries)",
            valid_cuts(run_id, history, min(max(from_step, 0), last)),
        )
    return from_step


def fork_entries(run_id: str, history: list[Checkpoint], cut: int) -> list[Checkpoint]:
    """The entries a fork cut after entry `cut` starts with (see the module's rules), or
    `InvalidForkPointError` naming the operation in the way and the valid cuts near it."""
    problem, copied = _copy(run_id, history, cut)
    if problem is not None:
        near = valid_cuts(run_id, history, cut)
        shown = ", ".join(str(n) for n in near) or "0"
        raise InvalidForkPointError(
            run_id, f"cannot fork run {run_id} after entry {cut}: {problem}; valid: {shown}", near
        )
    return [replace(cp, seq=index, task_attempt=1) for index, cp in enumerate(copied, start=1)]


def valid_cuts(run_id: str, history: list[Checkpoint], around: int) -> list[int]:
    """Up to `OFFERED` valid cuts before `around` and as many from it on (within `NEAR`)."""
    last = history[-1].seq if history else 0
    before = [
        n
        for n in range(around - 1, max(around - NEAR, 0) - 1, -1)
        if _copy(run_id, history, n)[0] is None
    ][:OFFERED]
    after = [
        n
        for n in range(around, min(around + NEAR, last) + 1)
        if _copy(run_id, history, n)[0] is None
    ][:OFFERED]
    return sorted(before + after)


def _copy(run_id: str, history: list[Checkpoint], cut: int) -> tuple[str | None, list[Checkpoint]]:
    """What stands in the way of cutting after entry `cut` (None: nothing), and the entries
    the replay view answers with there, in log order."""
    view = HistoryView(run_id, [cp for cp in history if cp.seq <= cut])
    copied: list[Checkpoint] = []
    callbacks: Counter[str] = Counter()
    for position in range(view.length):
        entries = view.entries(position)
        if not entries:
            continue
        first, last = entries[0], entries[-1]
        kind, name = first.operation_kind, first.name
        if kind == "batch":
            return (
                f"operation #{position} is a fan-out ({name!r}): its children's results stay "
                "with the original run; fork from before it",
                [],
            )
        if kind == "callback":
            callbacks[name] += 1
        elif kind == "callback_wait" and last.kind in _CALLBACK_ENDS:
            callbacks[name] -= 1
        ended = (
            last.kind in SETTLED_KINDS
            or last.kind in _FAILED_ENDS
            or last.kind in _CALLBACK_ENDS
            or (last.kind is K.STEP_FAILED and last.wake_at is None)
        )
        if not ended:
            return f"operation #{position} ({kind} {name!r}) has not ended there", []
        copied.extend(entries)
    waiting = sorted(name for name, open_ in callbacks.items() if open_ > 0)
    if waiting:
        return (
            f"callback {waiting[0]!r} was created and its wait has not ended (its token "
            "answers the original run)",
            [],
        )
    return None, sorted(copied, key=lambda cp: cp.seq)
