"""The queues declared in code over HTTP, with their slots in use and runs waiting.

    GET /queues            200 {"queues": [queue, ...]}, by name
    GET /queues/{name}     200 queue, with its keys one by one; 404 queue_not_found; 400 a
                           name over 64 characters

A queue is listed when a task declares it (`@task(queue=Queue(...))`; a task without one
runs in a queue of its own, without limits, and `GET /tasks` names it): its settings, its
tasks and, for a queue with a concurrency limit, the slots in use and the runs waiting,
summed over its concurrency keys (`durable.services.slots.queue_usage`: at most
`MAX_KEYS` keys read, `keys_capped` says when there are more; a key's waiting runs are
counted up to `MAX_COUNTED`). Read-only: nothing is stored. A run waiting for a slot shows
its place in `GET /runs/{id}` (`queue_position`, `with_queue_position`).
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from durable.api.models import RunBody
from durable.api.openapi import route_responses
from durable.client import Client
from durable.errors import QueueNotFoundError
from durable.flow import Queue
from durable.services.slots import queue_position, queue_usage

QueueName = Annotated[str, Path(max_length=64, description="the queue's name")]


class RateLimitBody(BaseModel):
    """At most `limit` runs start per `period_seconds`, per concurrency key."""

    limit: int
    period_seconds: float


class KeyBody(BaseModel):
    """One concurrency key of a queue (`key` null: the runs triggered without one)."""

    key: str | None
    running: int = Field(description="slots in use: runs holding one")
    waiting: int = Field(description="runs waiting for a slot")


class QueueBody(BaseModel):
    """A queue declared in code, its limits, its tasks, and how full it is."""

    name: str
    concurrency: int | None = Field(description="runs executing at once per key; null: any")
    release_on_wait: bool = Field(description="a run gives its slot back while it waits")
    rate_limit: RateLimitBody | None
    max_size: int | None = Field(description="runs waiting per key before a trigger gets 429")
    debounce_seconds: float | None
    tasks: list[str] = Field(description="the tasks whose runs start in it")
    running: int = Field(description="slots in use, summed over its keys")
    waiting: int = Field(description="runs waiting for a slot, summed over its keys")
    keys_capped: bool = Field(description="true when it has more keys than were read")
    keys: list[KeyBody] | None = Field(
        default=None, description="each key (`GET /queues/{name}` only)"
    )


class QueueListResponse(BaseModel):
    """Body of `GET /queues`: every queue a task declares, by name."""

    queues: list[QueueBody]


def register_queue_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `GET /queues` and `GET /queues/{name}` to `app`, for `client`'s tasks."""

    @app.get(
        "/queues",
        summary="List the queues",
        description="Each queue a task declares, with its limits, its tasks, its slots in "
        "use and its runs waiting (summed over its concurrency keys).",
        responses=_responses(QueueListResponse, "every declared queue, by name"),
        tags=["queues"],
    )
    def list_queues() -> QueueListResponse:
        return QueueListResponse(
            queues=[describe_queue(client, queue) for queue in declared(client).values()]
        )

    @app.get(
        "/queues/<name>",
        summary="Get a queue",
        description="The queue with its concurrency keys one by one.",
        responses=_responses(QueueBody, "the queue", 400, 404),
        tags=["queues"],
    )
    def get_queue(name: QueueName) -> QueueBody:
        queue = client.registry.queue(name)
        if queue is None:
            raise QueueNotFoundError(name)
        return describe_queue(client, queue, by_key=True)


def declared(client: Client) -> dict[str, Queue]:
    """The queues the client's tasks declare, by name."""
    queues = client.registry.queues()
    return {name: queue for name, queue in sorted(queues.items()) if queue is not None}


def describe_queue(client: Client, queue: Queue, by_key: bool = False) -> QueueBody:
    """`queue` as `GET /queues` shows it (with `by_key`, each key too)."""
    keys, capped = queue_usage(client.store, queue.name) if queue.concurrency else ([], False)
    limit = queue.rate_limit
    return QueueBody(
        name=queue.name,
        concurrency=queue.concurrency,
        release_on_wait=queue.release_on_wait,
        rate_limit=(
            RateLimitBody(limit=limit.limit, period_seconds=limit.period.total_seconds())
            if limit is not None
            else None
        ),
        max_size=queue.max_size,
        debounce_seconds=queue.debounce.total_seconds() if queue.debounce else None,
        tasks=sorted(task.id for task in client.registry if task.queue_name == queue.name),
        running=sum(key.running for key in keys),
        waiting=sum(key.waiting for key in keys),
        keys_capped=capped,
        keys=(
            [KeyBody(key=key.key, running=key.running, waiting=key.waiting) for key in keys]
            if by_key
            else None
        ),
    )


def with_queue_position(body: RunBody, client: Client) -> RunBody:
    """`GET /runs/{id}`'s body, with the run's place among the runs waiting for a slot."""
    position = queue_position(
        client.store,
        body.run_id,
        body.queue,
        body.concurrency_key,
        body.priority,
        body.waiting_for,
    )
    if position is None:
        return body
    return body.model_copy(update={"queue_position": position})


def _responses(
    model: type[BaseModel], description: str, *errors: int
) -> dict[int, OpenAPIResponse]:
    words = {400: "a name over 64 characters", 404: "no task declares a queue of that name"}
    return route_responses(200, model, description, {error: words[error] for error in errors})


class QueueSlotFigures(BaseModel):
    """A queue with a concurrency limit in `GET /metrics`: slots in use, runs waiting."""

    name: str
    concurrency: int
    running: int = Field(description="slots in use, summed over its keys")
    waiting: int = Field(description="runs waiting for a slot (the queue's depth)")
    keys_capped: bool = Field(description="true when it has more keys than were read")


def queue_figures(client: Client) -> list[dict[str, object]]:
    """Each queue with a concurrency limit, as `GET /metrics` shows it."""
    figures = []
    for queue in declared(client).values():
        if queue.concurrency is None:
            continue
        keys, capped = queue_usage(client.store, queue.name)
        figures.append(
            QueueSlotFigures(
                name=queue.name,
                concurrency=queue.concurrency,
                running=sum(key.running for key in keys),
                waiting=sum(key.waiting for key in keys),
                keys_capped=capped,
            ).model_dump()
        )
    return figures
