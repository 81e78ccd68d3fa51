"""Bulk jobs over HTTP: act on every run a filter matches, in the background.

    POST /bulk             {"action": "cancel"|"retry"|"resume", "filter": {...}}
                           202 the job (state "running"); 400 a malformed body or filter;
                           422 an unknown action, one not served yet, or an empty filter
                           without "all": true
    GET  /bulk/{job_id}    200 the job and its progress; 404 no such job

The filter takes the runs list's filters (`task_id`, `status`, `created_after`,
`created_before`) and `tag`; an empty filter would act on every run, so it must say so
with `"all": true`. The job is worked on by the workers (`durable.services.bulk`): poll
`GET /bulk/{job_id}` until `state` is no longer "running". The caller
(`durable.api.caller`) is recorded on the job and in each run's audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from durable.api.caller import caller_of
from durable.api.openapi import route_responses
from durable.client import Client
from durable.records import RunStatus
from durable.storage.bulk_jobs import BulkAction, BulkFilter, BulkJob, BulkState

# `bulk_` and 32 hex digits; longer names no job.
MAX_JOB_ID_LENGTH = 64


def _utc(when: datetime | None) -> datetime | None:
    """An instant given without a time zone is UTC."""
    if when is None or when.tzinfo is not None:
        return when
    return when.replace(tzinfo=UTC)


class BulkFilterBody(BaseModel):
    """Which runs a bulk job acts on (all the given conditions hold)."""

    model_config = ConfigDict(extra="forbid")

    task_id: StrictStr | None = Field(default=None, min_length=1, max_length=256)
    status: RunStatus | None = None
    created_after: datetime | None = Field(
        default=None, description="runs created at or after (ISO-8601; UTC when no zone)"
    )
    created_before: datetime | None = Field(
        default=None, description="runs created before (ISO-8601; UTC when no zone)"
    )
    tag: StrictStr | None = Field(
        default=None, min_length=1, max_length=128, description="runs carrying this tag"
    )
    all: StrictBool = Field(
        default=False, description="with no other condition: every run (required then)"
    )

    @field_validator("created_after", "created_before", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        """A date-time is ISO-8601 text, as documented: not a number read as epoch seconds."""
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an ISO-8601 date-time string")
        return value

    @model_validator(mode="after")
    def _range(self) -> Self:
        after, before = _utc(self.created_after), _utc(self.created_before)
        if after is not None and before is not None and after >= before:
            raise ValueError("created_after must be before created_before")
        return self

    def to_filter(self) -> BulkFilter:
        return BulkFilter(
            task_id=self.task_id,
            status=self.status,
            created_after=_utc(self.created_after),
            created_before=_utc(self.created_before),
            tag=self.tag,
        )


class BulkRequest(BaseModel):
    """Body of `POST /bulk`."""

    model_config = ConfigDict(extra="forbid")

    action: StrictStr = Field(
        max_length=32,
        description="what to do to each matching run",
        json_schema_extra={"enum": [str(action) for action in BulkAction]},
    )
    filter: BulkFilterBody = Field(default_factory=BulkFilterBody)


class BulkFilterView(BaseModel):
    """The filter a job was given."""

    task_id: str | None
    status: RunStatus | None
    created_after: datetime | None
    created_before: datetime | None
    tag: str | None


class BulkJobBody(BaseModel):
    """A bulk job and its progress (`GET /bulk/{job_id}`, `POST /bulk`)."""

    job_id: str
    action: BulkAction
    filter: BulkFilterView
    state: BulkState = Field(description="running, then completed or failed (see `reason`)")
    done: bool = Field(description="whether the job has ended (completed or failed)")
    reason: str | None = Field(description="why the job failed")
    by: str = Field(description="who started it")
    matched: int = Field(description="runs the filter matched so far")
    acted: int = Field(description="runs the action changed")
    skipped: int = Field(description="runs it no longer applied to (ended meanwhile, ...)")
    errors: int = Field(description="runs it failed on")
    error_messages: list[str] = Field(description="the first few errors' messages")
    pages: int = Field(description="pages of matches listed so far")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: BulkJob) -> BulkJobBody:
        values: dict[str, Any] = {
            "job_id": job.job_id,
            "action": job.action,
            "filter": BulkFilterView(**job.filter.to_dict()),
            "state": job.state,
            "done": job.done,
            "reason": job.reason,
            "by": job.by,
            "matched": job.matched,
            "acted": job.acted,
            "skipped": job.skipped,
            "errors": job.errors,
            "error_messages": list(job.error_messages),
            "pages": job.pages,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "finished_at": job.finished_at,
        }
        return cls(**values)


def register_bulk_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `POST /bulk` and `GET /bulk/{job_id}` to `app`, served by `client`."""

    @app.post(
        "/bulk",
        status_code=202,
        summary="Start a bulk job",
        description="Cancel, retry or resume every run the filter matches, in the background. "
        'An empty filter must say `"all": true`. Poll `GET /bulk/{job_id}` for its progress.',
        responses=route_responses(
            202,
            BulkJobBody,
            "the job, started",
            {
                400: "malformed JSON, or an invalid body or filter",
                422: "an unknown action, one this deployment does not serve yet, or an "
                'empty filter without "all": true',
            },
        ),
        tags=["bulk"],
    )
    def start_bulk_job(body: Annotated[BulkRequest, Body()]) -> BulkJobBody:
        job = client.bulk(
            body.action, body.filter.to_filter(), by=caller_of(app), all_runs=body.filter.all
        )
        return BulkJobBody.of(job)

    @app.get(
        "/bulk/<job_id>",
        summary="A bulk job and its progress",
        responses=route_responses(
            200,
            BulkJobBody,
            "the job",
            {400: "a job id over 64 characters", 404: "no such bulk job"},
        ),
        tags=["bulk"],
    )
    def get_bulk_job(
        job_id: Annotated[str, Path(max_length=MAX_JOB_ID_LENGTH, description="the job's id")],
    ) -> BulkJobBody:
        return BulkJobBody.of(client.bulk_job(job_id))
