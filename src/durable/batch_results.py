"""The end of a fan-out as its log keeps it: a reference to the children's result items.

A batch's children report to the batch (`durable.services.batches`): each child's outcome is one
result item beside the run's log. When the batch is decided, its log entry (BATCH_COMPLETED
or BATCH_FAILED) holds a *reference* to those items, not a copy of them, so the entry's size
does not grow with the batch (a copy of 10,000 results would pass DynamoDB's 400 KB item):

    {"batch": {"run_id": R, "task_attempt": A, "position": P},
     "total": N, "succeeded": S, "failed": F, "ended": "<base64 bitmap>"?}

`ended` is there only when some children had not ended when the batch was decided (too
many failed, or one succeeded first): it names the children whose outcome counts, so a
child that ends later (its result item is still recorded) changes nothing on replay.

`ctx.map` / `ctx.parallel` then return a `BatchResults`: a read-only sequence, in input
order, that reads the result items a page at a time (`RunStore.list_batch_results` from an
index, `PAGE_SIZE` items) when the code first looks at them, and keeps what it read. A
replay that never looks reads nothing. A child's result too large for an item is in the
blob store (`durable.values`), fetched when that element is first read.

Logs written before hold every child's outcome in the entry's value (a JSON list of
`{"state": "ok" | "failed" | "skipped", ...}`): `recorded_outcome` answers them as then.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from durable.errors import BatchFailedError, ChildRunFailedError
from durable.records import BatchItemResult, CheckpointKind
from durable.serialization import JsonData

PAGE_SIZE = 250  # result items a read asks for (DynamoDB also stops a page at 1 MB)

# (start index, limit) -> the result items from `start` on, in index order, up to `limit`
ResultPages = Callable[[int, int], list[BatchItemResult]]


@dataclass(frozen=True, slots=True)
class BatchReference:
    """Where a decided batch's outcomes are, and how many there are of each."""

    run_id: str
    task_attempt: int
    position: int
    total: int
    succeeded: int
    failed: int
    ended: frozenset[int] | None = None  # None: every child ended before the decision

    def counts(self, index: int) -> bool:
        """Whether child `index`'s outcome is part of the batch's result."""
        return self.ended is None or index in self.ended

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "batch": {
                "run_id": self.run_id,
                "task_attempt": self.task_attempt,
                "position": self.position,
            },
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
        }
        if self.ended is not None:
            value["ended"] = _bitmap(self.ended, self.total)
        return value

    @classmethod
    def from_value(cls, value: Any) -> BatchReference | None:
        """The reference a log entry's value holds; None for the old form (every outcome)."""
        if not isinstance(value, dict) or not isinstance(value.get("batch"), dict):
            return None
        key = value["batch"]
        total = int(value["total"])
        ended = value.get("ended")
        return cls(
            run_id=str(key["run_id"]),
            task_attempt=int(key["task_attempt"]),
            position=int(key["position"]),
            total=total,
            succeeded=int(value.get("succeeded", 0)),
            failed=int(value.get("failed", 0)),
            ended=_indexes(str(ended), total) if ended is not None else None,
        )


def _bitmap(indexes: frozenset[int], total: int) -> str:
    bits = bytearray((total + 7) // 8)
    for index in indexes:
        bits[index // 8] |= 1 << (index % 8)
    return base64.b64encode(bytes(bits)).decode("ascii")


def _indexes(bitmap: str, total: int) -> frozenset[int]:
    bits = base64.b64decode(bitmap)
    return frozenset(index for index in range(total) if bits[index // 8] >> (index % 8) & 1)


class BatchResults(Sequence[Any]):
    """What `ctx.map` returns: each child's result in input order, read when first used.

    An element is the child's result, a `ChildRunFailedError` for a tolerated failure, or
    None for a child that never ended (the batch was decided first). Compares equal to a
    list with the same elements; slicing gives a list.
    """

    def __init__(
        self,
        reference: BatchReference,
        pages: ResultPages,
        decode: Callable[[str], Any],
        page_size: int | None = None,
        known: list[BatchItemResult] | None = None,
    ) -> None:
        self.reference = reference
        self._pages = pages
        self._decode = decode
        self._page_size = page_size or PAGE_SIZE
        self._items: dict[int, BatchItemResult] = {}
        self._loaded: set[int] = set()  # page numbers read
        self._values: dict[int, Any] = {}
        # Every result item, when the caller has read them all already: nothing to read.
        self._complete = known is not None
        for item in known or []:
            if reference.counts(item.index):
                self._items.setdefault(item.index, item)

    def __len__(self) -> int:
        return self.reference.total

    @overload
    def __getitem__(self, index: int) -> JsonData: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> JsonData:
        if isinstance(index, slice):
            return [self._element(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("batch result index out of range")
        return self._element(index)

    def __iter__(self) -> Iterator[Any]:
        for index in range(len(self)):
            yield self._element(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # a sequence equal to a list: unhashable

    def __repr__(self) -> str:
        ref = self.reference
        return f"BatchResults({ref.total} children: {ref.succeeded} succeeded, {ref.failed} failed)"

    def item(self, index: int) -> BatchItemResult | None:
        """How child `index` ended, as recorded (None: it had not ended at the decision)."""
        page = index // self._page_size
        if not self._complete and page not in self._loaded:
            start = page * self._page_size
            for item in self._pages(start, self._page_size):
                if self.reference.counts(item.index):
                    self._items.setdefault(item.index, item)
            self._loaded.add(page)
        return self._items.get(index)

    def _element(self, index: int) -> JsonData:
        if index not in self._values:
            self._values[index] = _element_of(self.item(index), self._decode)
        return self._values[index]

    def failures(self) -> list[tuple[int, str, str]]:
        """(index, error type, message) of every failed child, in input order."""
        failed: list[tuple[int, str, str]] = []
        for index in range(len(self)):
            item = self.item(index)
            if item is not None and not item.ok:
                error_type, message = _error_of(item)
                failed.append((index, error_type, message))
        return failed

    def first_success(self) -> JsonData:
        """The result of the first child (in input order) that succeeded."""
        for index in range(len(self)):
            item = self.item(index)
            if item is not None and item.ok:
                return self._element(index)
        raise LookupError("no child of the batch succeeded")


def _error_of(item: BatchItemResult) -> tuple[str, str]:
    if item.error is None:
        return "Unknown", "no error recorded"
    return item.error.type, item.error.message


def _element_of(item: BatchItemResult | None, decode: Callable[[str], Any]) -> JsonData:
    if item is None:
        return None
    if item.ok:
        return decode(item.result) if item.result is not None else None
    error_type, message = _error_of(item)
    return ChildRunFailedError(item.run_id, "FAILED", error_type, message)


def referenced_outcome(
    name: str, results: BatchResults, first_success: bool, kind: CheckpointKind
) -> JsonData:
    """What ctx.map / ctx.parallel return (or raise) for a batch end kept by reference."""
    if kind is CheckpointKind.BATCH_FAILED:
        raise BatchFailedError(name, results.failures(), len(results))
    if first_success:
        return results.first_success()
    return results


def recorded_outcome(
    name: str, outcomes: list[dict[str, Any]], first_success: bool, kind: CheckpointKind
) -> JsonData:
    """What ctx.map / ctx.parallel return (or raise) for a batch end of an old log, which
    holds every child's outcome."""
    failures = [
        (index, str(outcome["type"]), str(outcome["message"]))
        for index, outcome in enumerate(outcomes)
        if outcome["state"] == "failed"
    ]
    if kind is CheckpointKind.BATCH_FAILED:
        raise BatchFailedError(name, failures, len(outcomes))
    if first_success:
        return next(outcome["value"] for outcome in outcomes if outcome["state"] == "ok")
    results: list[Any] = []
    for outcome in outcomes:
        if outcome["state"] == "ok":
            results.append(outcome["value"])
        elif outcome["state"] == "failed":
            results.append(
                ChildRunFailedError(
                    outcome["run_id"], "FAILED", outcome["type"], outcome["message"]
                )
            )
        else:
            results.append(None)
    return results
