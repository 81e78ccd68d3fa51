"""`GET /metrics`: queue, worker and per-task run figures (`durable.services.stats` says
where each comes from and what it costs).

    GET /metrics   200 {"generated_at", "queue", "dead_letter", "workers", "tasks", "totals",
                        "queues"}

The response models below are the contract the dashboard's metrics panel reads; they only
describe `Stats.to_dict()` for the OpenAPI document.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, content_types
from pydantic import BaseModel, Field

from durable.api.queues import QueueSlotFigures, queue_figures
from durable.client import Client


class QueueFigures(BaseModel):
    name: str | None = Field(description="the wake-up queue")
    depth: int | None = Field(description="messages waiting for a worker")
    in_flight: int | None = Field(description="messages received by a worker, not yet deleted")
    delayed: int | None = Field(description="messages not yet visible (timers, backoffs)")


class DeadLetterFigures(BaseModel):
    name: str | None
    depth: int | None = Field(description="messages that failed every delivery")


class WorkerFigures(BaseModel):
    in_use: int | None = Field(description="worker invocations running (messages in flight)")
    limit: int | None = Field(description="how many may run at once; null when unknown")


class LastHourFigures(BaseModel):
    started: int
    completed: int
    failed: int
    cancelled: int
    timed_out: int
    step_retries: int
    attempt_retries: int
    held: int = Field(description="runs held for a code fix (a divergence, an unknown task)")
    retry_rate: float | None = Field(description="retries per run started; null if none")
    p50_seconds: float | None
    p95_seconds: float | None


class TaskFigures(BaseModel):
    task_id: str
    by_status: dict[str, int]
    last_hour: LastHourFigures
    held: int = Field(description="holds for a code fix, ever (`WAITING` fix:... runs)")


class TotalFigures(BaseModel):
    by_status: dict[str, int]


class MetricsResponse(BaseModel):
    generated_at: str
    queue: QueueFigures
    dead_letter: DeadLetterFigures
    workers: WorkerFigures
    tasks: list[TaskFigures]
    totals: TotalFigures
    capped_statuses: list[str] = Field(
        description="active statuses with more runs than were counted: lower bounds"
    )
    queues: list[QueueSlotFigures] = Field(
        default_factory=list, description="each queue with a concurrency limit (`GET /queues`)"
    )


def register_metrics_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `GET /metrics` to `app`, answering from `client`."""

    @app.get(
        "/metrics",
        summary="Queue, worker and run figures",
        description="Queue depths (SQS's approximate counts), workers in use against the "
        "limit, runs by status per task, and per task in the last hour: runs started and "
        "ended, retries, retry rate, p50/p95 run duration. Read by key, never a scan.",
        responses={
            200: {
                "description": "the figures",
                "content": {content_types.APPLICATION_JSON: {"model": MetricsResponse}},
            }
        },
        tags=["metrics"],
    )
    def metrics() -> dict[str, Any]:
        return {**client.stats().to_dict(), "queues": queue_figures(client)}
