"""The registered tasks over HTTP, and in the OpenAPI document. Read-only: nothing is stored.

    GET /tasks               200 {"tasks": [task, ...]}, by id
    GET /tasks/{task_id}     200 task; 404 unknown_task; 400 an id over 512 characters

A task is described by its id, version, retry policy, timeout, schedule (with its next
instant), whether it is `async def`, its docstring's first line, the JSON Schemas of its
payload and result (from its annotations: `durable.schemas`), and an example payload that
the task accepts. The API knows the tasks its process imported: the modules named by
`DURABLE_TASK_MODULES` (`durable.adapters`), which every function of `template.yaml`
shares through its `Globals` and which `durable dev` hands to its API and its workers
alike, so the API lists exactly the tasks the workers run.

`add_task_operations` writes the tasks into the OpenAPI document: one operation
`POST /tasks/<task_id>/runs` per task, whose request body's `payload` is the task's schema
(`components/schemas/<task_id>.Payload`, its models beside it as `<task_id>.<Model>`) with
the example; the generic `POST /tasks/{task_id}/runs` stays: it is the route that serves
them all (a concrete path is matched before a templated one, so clients see the task's own).
"""

from __future__ import annotations

import copy
import inspect
import re
import weakref
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, Field

from durable.api.openapi import route_responses
from durable.client import Client
from durable.errors import PayloadValidationError
from durable.schemas import JsonSchema, payload_example, schema_of
from durable.serialization import JsonData
from durable.task import TaskDefinition

# Task ids are the user's: any text, but one longer than this names no task.
MAX_TASK_ID_LENGTH = 512
TRIGGER_PATH = "/tasks/{task_id}/runs"

TaskId = Annotated[str, Path(max_length=MAX_TASK_ID_LENGTH, description="the task's id")]


class RetryBody(BaseModel):
    """A task's retry policy: `max_attempts` counts the first try."""

    max_attempts: int
    factor: float
    min_delay_seconds: float
    max_delay_seconds: float
    jitter: float = Field(description="each delay is shortened by up to this fraction")
    non_retryable: list[str] = Field(description="exception types that fail the run at once")


class ScheduleBody(BaseModel):
    """A cron task's schedule: the sweeper starts a run at each of its instants."""

    cron: str
    timezone: str = Field(description="the IANA zone the expression is read in")
    next_at: datetime | None = Field(description="the next instant (UTC), if any")


class TaskBody(BaseModel):
    """A registered task: how it runs, and what it takes and gives."""

    task_id: str
    version: str | None = Field(description="the task version runs are pinned to")
    retry: RetryBody
    timeout_seconds: float | None
    schedule: ScheduleBody | None
    is_async: bool
    description: str | None = Field(description="the first line of the task's docstring")
    payload_schema: JsonSchema = Field(description="JSON Schema of the payload; {}: any JSON")
    result_schema: JsonSchema = Field(description="JSON Schema of the result; {}: any JSON")
    payload_example: JsonData = Field(
        default=None, description="a payload the task accepts (declared, or built from the schema)"
    )
    queue: str | None = Field(
        default=None, description="the queue its runs start in (`GET /queues`); its own by default"
    )


class TaskListResponse(BaseModel):
    """Body of `GET /tasks`: every registered task, by id."""

    tasks: list[TaskBody]


def _responses(
    model: type[BaseModel], description: str, *errors: int
) -> dict[int, OpenAPIResponse]:
    words = {400: "a task id over 512 characters", 404: "no task registered with that id"}
    return route_responses(200, model, description, {error: words[error] for error in errors})


# The client each resolver serves: the OpenAPI document is built from the resolver alone.
_clients: weakref.WeakKeyDictionary[APIGatewayHttpResolver, Client] = weakref.WeakKeyDictionary()


def register_task_routes(app: APIGatewayHttpResolver, client: Client) -> None:
    """Add `GET /tasks` and `GET /tasks/{task_id}` to `app`, describing `client`'s tasks."""
    _clients[app] = client

    @app.get(
        "/tasks",
        summary="List the registered tasks",
        description="Each task with its retry policy, timeout, schedule, version, and the "
        "JSON Schemas of its payload and result, with an example payload.",
        responses=_responses(TaskListResponse, "every task, by id"),
        tags=["tasks"],
    )
    def list_tasks() -> TaskListResponse:
        now = client.clock.now()
        return TaskListResponse(tasks=[describe(task, now) for task in client.registry])

    @app.get(
        "/tasks/<task_id>",
        summary="Get a task",
        responses=_responses(TaskBody, "the task", 400, 404),
        tags=["tasks"],
    )
    def get_task(task_id: TaskId) -> TaskBody:
        return describe(client.registry.get(unquote(task_id)), client.clock.now())


def describe(definition: TaskDefinition[Any, Any], now: datetime) -> TaskBody:
    """`definition` as `GET /tasks` shows it, its schedule's next instant after `now`."""
    schedule = None
    if definition.schedule is not None:
        schedule = ScheduleBody(
            cron=definition.schedule.expression,
            timezone=definition.schedule.timezone,
            next_at=definition.schedule.next_after(now),
        )
    return _described(definition).model_copy(update={"schedule": schedule})


@lru_cache(maxsize=1024)
def _described(definition: TaskDefinition[Any, Any]) -> TaskBody:
    """What never changes about a task (all but the schedule's next instant), worked out once:
    its schemas and example cost a few milliseconds each."""
    policy = definition.retry
    payload_schema = schema_of(definition.payload_annotation, "validation")
    doc = inspect.getdoc(definition.fn)
    return TaskBody(
        task_id=definition.id,
        version=definition.version,
        retry=RetryBody(
            max_attempts=policy.max_attempts,
            factor=policy.factor,
            min_delay_seconds=policy.min_delay.total_seconds(),
            max_delay_seconds=policy.max_delay.total_seconds(),
            jitter=policy.jitter,
            non_retryable=[kind.__name__ for kind in policy.non_retryable],
        ),
        timeout_seconds=definition.timeout.total_seconds() if definition.timeout else None,
        schedule=None,
        is_async=definition.is_async,
        description=doc.strip().splitlines()[0] if doc and doc.strip() else None,
        payload_schema=payload_schema,
        result_schema=schema_of(definition.result_annotation, "serialization"),
        payload_example=payload_example(definition.payload_annotation, payload_schema),
        queue=definition.queue_name,
    )


# -- the OpenAPI document ----------------------------------------------------------------


def add_task_operations(app: APIGatewayHttpResolver, document: dict[str, Any]) -> None:
    """Add `POST /tasks/<task_id>/runs` for each task of `app`'s client to `document`.

    Each is the generic trigger operation (its responses included) with the task's own
    request body: `TriggerRequest` whose `payload` is the task's schema, and the example.
    """
    client = _clients.get(app)
    paths: dict[str, Any] = document.get("paths", {})
    generic = paths.get(TRIGGER_PATH, {}).get("post")
    if client is None or generic is None:
        return
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    envelope = schemas.get("TriggerRequest", {"type": "object", "properties": {}})
    for definition in client.registry:
        prefix = _component_prefix(definition.id, schemas)
        body = _described(definition)
        schemas[f"{prefix}.Payload"] = _hoisted(body.payload_schema, prefix, schemas)
        request = copy.deepcopy(envelope)
        request["title"] = f"Trigger {definition.id}"
        request["description"] = f"Body of `POST /tasks/{definition.id}/runs`."
        request.setdefault("properties", {})["payload"] = {
            "$ref": f"#/components/schemas/{prefix}.Payload",
            "description": f"the payload of {definition.id}",
        }
        if not _accepts_null(definition):
            request["required"] = sorted({*request.get("required", []), "payload"})
        schemas[f"{prefix}.TriggerRequest"] = request
        operation = copy.deepcopy(generic)
        operation["operationId"] = f"trigger_{prefix}"
        operation["summary"] = f"Trigger a run of {definition.id}"
        operation["description"] = body.description or f"Start a run of task {definition.id}."
        operation["tags"] = ["tasks"]
        parameters = [p for p in operation.pop("parameters", []) if p.get("name") != "task_id"]
        if parameters:
            operation["parameters"] = parameters
        media = {"schema": {"$ref": f"#/components/schemas/{prefix}.TriggerRequest"}}
        if body.payload_example is not None or _accepts_null(definition):
            media["example"] = {"payload": body.payload_example}
        operation["requestBody"] = {
            "required": "payload" in request.get("required", []),
            "content": {content_types.APPLICATION_JSON: media},
        }
        paths[f"/tasks/{quote(definition.id, safe='')}/runs"] = {"post": operation}


def _component_prefix(task_id: str, schemas: dict[str, Any]) -> str:
    """A name for the task's components (OpenAPI allows `A-Za-z0-9._-`), not taken yet."""
    base = re.sub(r"[^A-Za-z0-9._-]", "_", task_id) or "_"
    prefix, index = base, 2
    while f"{prefix}.Payload" in schemas:
        prefix, index = f"{base}_{index}", index + 1
    return prefix


def _hoisted(schema: JsonSchema, prefix: str, schemas: dict[str, Any]) -> JsonSchema:
    """`schema` for the components: its `$defs` moved to `<prefix>.<Name>` beside it, and
    every `#/$defs/Name` pointed there (a `$ref` in a component is read from the document's
    root, which has no `$defs`)."""

    def repoint(node: Any) -> Any:
        if isinstance(node, dict):
            out = {key: repoint(value) for key, value in node.items() if key != "$defs"}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                out["$ref"] = f"#/components/schemas/{prefix}.{ref.removeprefix('#/$defs/')}"
            return out
        if isinstance(node, list):
            return [repoint(item) for item in node]
        return node

    for name, part in schema.get("$defs", {}).items():
        schemas[f"{prefix}.{name}"] = repoint(part)
    hoisted: JsonSchema = repoint(schema)
    return hoisted


def _accepts_null(definition: TaskDefinition[Any, Any]) -> bool:
    """Whether a trigger may leave the payload out (it is then null)."""
    try:
        definition.validate_payload(None)
    except PayloadValidationError:
        return False
    except Exception:  # a validator of the user's that broke: say the payload is needed
        return False
    return True
