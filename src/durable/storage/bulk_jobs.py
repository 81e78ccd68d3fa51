"""A bulk job's record: an action applied to every run a filter matches, and its progress.

`durable.services.bulk` makes and works them; stores keep them (`BulkJobs` in
`durable.storage.base`) as one item each, whose `to_json` is the whole record but the lease
(which adapters keep beside it, to write it under a condition).

    state  running ──► completed           every match visited once (acted, skipped or errors)
                  └──► failed (reason)     the job could not go on (an action nobody serves)

Counts: `matched` runs the filter listed, `acted` runs the action changed, `skipped` runs it
no longer applied to (cancelling a run that ended meanwhile), `errors` runs it failed on,
with the first `MAX_ERROR_MESSAGES` messages. `cursor` is the listing's position after the
last page taken, `pending` the run ids of that page not yet counted, `exhausted` whether
that page was the last.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from durable.records import RunStatus

# The first few error messages a job keeps (each cut to `MAX_ERROR_LENGTH` characters).
MAX_ERROR_MESSAGES = 5
MAX_ERROR_LENGTH = 300


class BulkAction(StrEnum):
    """What a bulk job does to each run it matches."""

    CANCEL = "cancel"
    RETRY = "retry"
    RESUME = "resume"


class BulkState(StrEnum):
    """Where a bulk job is: the last two are final."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BulkFilter:
    """Which runs a job acts on: those `RunStore.list_runs` lists with these arguments
    (a tag with a task or a status reads the tag's runs and keeps those that match)."""

    task_id: str | None = None
    status: RunStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    tag: str | None = None

    @property
    def empty(self) -> bool:
        """Whether it matches every run."""
        return all(value is None for value in asdict(self).values())

    def listing_arguments(self) -> dict[str, Any]:
        """The keyword arguments of `list_runs` that select these runs."""
        arguments: dict[str, Any] = {
            "task_id": self.task_id,
            "status": self.status,
            "created_after": self.created_after,
            "created_before": self.created_before,
            "tag": self.tag,
        }
        return arguments

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "status": str(self.status) if self.status is not None else None,
            "created_after": _instant(self.created_after),
            "created_before": _instant(self.created_before),
            "tag": self.tag,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BulkFilter:
        status = data.get("status")
        return cls(
            task_id=data.get("task_id"),
            status=RunStatus(status) if status is not None else None,
            created_after=_parse(data.get("created_after")),
            created_before=_parse(data.get("created_before")),
            tag=data.get("tag"),
        )


@dataclass(frozen=True, slots=True)
class BulkJob:
    """One bulk job as stored (see the module's docstring)."""

    job_id: str
    action: BulkAction
    filter: BulkFilter
    by: str
    created_at: datetime
    updated_at: datetime
    state: BulkState = BulkState.RUNNING
    reason: str | None = None
    matched: int = 0
    acted: int = 0
    skipped: int = 0
    errors: int = 0
    error_messages: tuple[str, ...] = ()
    cursor: str | None = None
    pending: tuple[str, ...] = ()
    exhausted: bool = False
    pages: int = 0
    finished_at: datetime | None = None
    # The processing lease: who works on the job, until when (kept beside the record).
    lease_owner: str | None = field(default=None, compare=False)
    lease_until: datetime | None = field(default=None, compare=False)

    @property
    def done(self) -> bool:
        return self.state is not BulkState.RUNNING

    def with_changes(self, **changes: Any) -> BulkJob:
        return replace(self, **changes)

    def with_error(self, message: str) -> BulkJob:
        """One more error; its message kept if it is among the first few."""
        kept = self.error_messages
        if len(kept) < MAX_ERROR_MESSAGES:
            kept = (*kept, message[:MAX_ERROR_LENGTH])
        return replace(self, errors=self.errors + 1, error_messages=kept)

    def to_json(self) -> str:
        """The record without its lease, as JSON text."""
        return json.dumps(
            {
                "job_id": self.job_id,
                "action": str(self.action),
                "filter": self.filter.to_dict(),
                "by": self.by,
                "created_at": _instant(self.created_at),
                "updated_at": _instant(self.updated_at),
                "state": str(self.state),
                "reason": self.reason,
                "matched": self.matched,
                "acted": self.acted,
                "skipped": self.skipped,
                "errors": self.errors,
                "error_messages": list(self.error_messages),
                "cursor": self.cursor,
                "pending": list(self.pending),
                "exhausted": self.exhausted,
                "pages": self.pages,
                "finished_at": _instant(self.finished_at),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(
        cls,
        text: str,
        lease_owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> BulkJob:
        data = json.loads(text)
        created = _parse(data["created_at"])
        updated = _parse(data["updated_at"])
        assert created is not None and updated is not None  # always written
        return cls(
            job_id=data["job_id"],
            action=BulkAction(data["action"]),
            filter=BulkFilter.from_dict(data["filter"]),
            by=data["by"],
            created_at=created,
            updated_at=updated,
            state=BulkState(data["state"]),
            reason=data.get("reason"),
            matched=int(data["matched"]),
            acted=int(data["acted"]),
            skipped=int(data["skipped"]),
            errors=int(data["errors"]),
            error_messages=tuple(data.get("error_messages", ())),
            cursor=data.get("cursor"),
            pending=tuple(data.get("pending", ())),
            exhausted=bool(data.get("exhausted", False)),
            pages=int(data.get("pages", 0)),
            finished_at=_parse(data.get("finished_at")),
            lease_owner=lease_owner,
            lease_until=lease_until,
        )


def _instant(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None
