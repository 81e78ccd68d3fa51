"""Which of a run's inbox events its log has consumed, and which one a wait takes next.

Rules (the worker and the context both follow them):

- A log entry that consumes an event (EVENT_RECEIVED, CALLBACK_COMPLETED, CALLBACK_FAILED)
  names it: `Checkpoint.inbox_id`. Once that entry is written, the event is consumed for
  good: it is never delivered again, whichever attempt or invocation reads the inbox next.
- Consumed events are deleted from the inbox after the invocation that consumed them has
  persisted (`Worker`), so an inbox holds what is still to come. A crash between the
  consuming entry and the delete leaves the item behind: the log already marks it consumed,
  so it is skipped, and deleted by the next invocation that reads the inbox (or with the
  run, by the retention purge).
- Logs written before entries named their event (a run in flight across the deploy that
  introduced this) consumed by count: the n-th EVENT_RECEIVED of a name took the n-th event
  of that name. Those events were never deleted, so they are still the first ones of
  their name once the events consumed by id are left out: they are skipped by count, as
  the code of that time did, and left for the retention purge.

    inbox:  e1(x) e2(x) e3(y) e4(x)      log: EVENT_RECEIVED x (no id)   <- consumed e1
                                              EVENT_RECEIVED x id=e4     <- consumed e4
    next x:  skip e4 (by id), skip e1 (by count)  ->  e2
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from durable.records import Checkpoint, CheckpointKind, InboxEvent


def consumed_inbox_ids(history: Iterable[Checkpoint]) -> set[str]:
    """The inbox ids the entries of `history` consumed."""
    return {entry.inbox_id for entry in history if entry.inbox_id is not None}


def unnumbered_consumptions(entries: Iterable[Checkpoint]) -> dict[str, int]:
    """Per event name, how many of `entries` consumed an event without naming it (old logs)."""
    counts: dict[str, int] = {}
    for entry in entries:
        if entry.kind is CheckpointKind.EVENT_RECEIVED and entry.inbox_id is None:
            counts[entry.name] = counts.get(entry.name, 0) + 1
    return counts


class InboxLedger:
    """What an attempt may still take from the inbox, given what its log consumed."""

    def __init__(self, consumed_ids: Iterable[str], unnumbered: Mapping[str, int]) -> None:
        self._consumed = set(consumed_ids)
        self._unnumbered = dict(unnumbered)

    def next_event(self, name: str, inbox: Iterable[InboxEvent]) -> InboxEvent | None:
        """The first event `name` (in arrival order) that the log has not consumed."""
        skip = self._unnumbered.get(name, 0)
        for event in inbox:
            if event.name != name or event.inbox_id in self._consumed:
                continue
            if skip > 0:
                skip -= 1  # taken by an entry of an old log, which named no event
                continue
            return event
        return None

    def consume(self, event: InboxEvent) -> None:
        """`event` is taken: an entry naming it has been written."""
        self._consumed.add(event.inbox_id)
