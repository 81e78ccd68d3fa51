"""The HTTP API (API Gateway HTTP API → Powertools resolver → `durable.Client`).

    POST /tasks/{task_id}/runs           202 {"run_id", "status", "created"}
    GET  /tasks, /tasks/{task_id}        200 the registered tasks (`durable.api.tasks`)
    GET  /runs                           200 {"runs": [summaries], "next_cursor"}
    GET  /runs/{run_id}                  200 the run (a browser's request: the dashboard page)
    GET  /runs/{run_id}/history          200 {"run_id", "history": [...]}
    GET  /runs/{run_id}/logs             200 {"run_id", "logs": [...], "next_cursor"} (api/logs.py)
    GET  /runs/{run_id}/timeline         200 the run page's timeline (`durable.api.timeline`)
    POST /runs/{run_id}/events/{name}    202 {"run_id", "event", "accepted"}
    POST /callbacks/{token}              202; 404 unknown token; 409 completed before or expired
    POST /runs/{run_id}/cancel           200 the run, now CANCELLED (audited: the caller)
    POST /runs/{run_id}/resume           200 the run, resumed; 409 not held (`api.resume`)
    POST /bulk, GET /bulk/{job_id}       202/200 a bulk job (`durable.api.bulk`)
    GET  /metrics                        200 queue, worker and run figures (`api.metrics`)
    GET  /openapi.json                   the OpenAPI document
    GET  /                               the dashboard page
    GET  /static/<name>                  its scripts and styles (durable.api.dashboard)

`build_app(client)` makes a resolver bound to one client; `handle(event, context, client)`
resolves one event with a resolver cached per client. Routes hold no rules of their own:
they validate the envelope (pydantic, through the resolver's `enable_validation`; bodies as
`durable.api.bodies` reads them), call the client and shape its answer. The edge checks
what the client would leave to a backend (empty filters, oversized ids, event names), so
no backend's error text reaches a caller. Errors are mapped in `durable.api.errors`;
nothing is stored when a request is refused: all of this runs before the client writes.
"""

from __future__ import annotations

import json
import threading
import weakref
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from durable.api.bodies import JsonBodyValidation, parse_json_body
from durable.api.bulk import register_bulk_routes
from durable.api.caller import caller_of
from durable.api.dashboard import register_dashboard_routes
from durable.api.errors import RequestError, register_error_handlers
from durable.api.logs import register_log_routes
from durable.api.metrics import register_metrics_routes
from durable.api.models import (
    CallbackRequest,
    CallbackResponse,
    EventRequest,
    EventResponse,
    HistoryEntryBody,
    HistoryResponse,
    RunBody,
    RunListResponse,
    RunSummary,
    TriggerRequest,
    TriggerResponse,
)
from durable.api.openapi import MAX_ID_LENGTH, RunId, route_responses
from durable.api.queues import register_queue_routes, with_queue_position
from durable.api.repair import register_repair_routes
from durable.api.resume import register_resume_routes
from durable.api.tasks import add_task_operations, register_task_routes
from durable.api.timeline import html_for_browsers, register_timeline_routes
from durable.client import Client
from durable.errors import InputError, InvalidNameError
from durable.names import EVENT_NAME, event_name
from durable.records import RunStatus
from durable.services.labels import TAG_PATTERN

API_TITLE = "durable"
API_DESCRIPTION = "Durable execution for AWS Lambda: trigger task runs and follow them."


# Event names stay out of the library's own wait namespaces (`callback:<hash>`, ...): the
# client's rule (`durable.names`), documented in the OpenAPI document as a pattern.
EVENT_NAME_PATTERN = f"^{EVENT_NAME.pattern}$"
_ERROR_DESCRIPTIONS = {
    400: "malformed JSON or an invalid request (path, query or body fields)",
    404: "no such task, run or callback",
    409: "the run has already ended, or the idempotency key started a run with another payload",
    413: "the request body is over 6 MB",
    415: "the body is not JSON",
    422: "the payload does not fit the task's payload type",
}


def _responses(
    status: int, model: type[BaseModel], description: str, *errors: int
) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for a route: its success body and the error statuses it can answer."""
    return route_responses(
        status, model, description, {error: _ERROR_DESCRIPTIONS[error] for error in errors}
    )


def build_app(client: Client) -> APIGatewayHttpResolver:
    """The resolver of the HTTP API, serving `client`."""
    app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=parse_json_body)
    # Powertools has no public option for which bodies its validation reads: this narrows
    # it to JSON (the resolver builds each route's middleware stack from this attribute).
    app._request_validation_middleware = JsonBodyValidation()  # type: ignore[no-untyped-call]  # Powertools' is untyped
    register_error_handlers(app)
    register_timeline_routes(app, client)
    register_task_routes(app, client)
    register_log_routes(app, client)
    register_metrics_routes(app, client)
    register_resume_routes(app, client)
    register_repair_routes(app, client)
    register_bulk_routes(app, client)
    register_queue_routes(app, client)

    @app.post(
        "/tasks/<task_id>/runs",
        status_code=202,
        summary="Trigger a run",
        description="Same idempotency key (for the same task) → the same run, `created: false`; "
        "the same key with another payload → 409.",
        responses=_responses(202, TriggerResponse, "the run", 400, 404, 409, 413, 415, 422),
        tags=["runs"],
    )
    def trigger(
        task_id: str,
        body: Annotated[TriggerRequest | None, Body()] = None,
    ) -> TriggerResponse:
        request = body or TriggerRequest()
        delay = timedelta(seconds=request.delay_seconds) if request.delay_seconds else None
        handle = client.trigger(
            unquote(task_id),
            request.payload,
            idempotency_key=request.idempotency_key,
            delay=delay,
            tags=request.tags,
            metadata=request.metadata,
            idempotency_key_ttl=(
                timedelta(seconds=request.idempotency_key_ttl)
                if request.idempotency_key_ttl
                else None
            ),
            concurrency_key=request.concurrency_key,
            priority=request.priority,
            ttl=timedelta(seconds=request.ttl_seconds) if request.ttl_seconds else None,
        )
        return TriggerResponse(run_id=handle.run_id, status=handle.status, created=handle.created)

    @app.get(
        "/runs",
        summary="List runs, newest first",
        responses=_responses(200, RunListResponse, "a page of runs", 400),
        tags=["runs"],
    )
    def list_runs(
        task_id: Annotated[
            str | None,
            Query(min_length=1, max_length=MAX_ID_LENGTH, description="only runs of this task"),
        ] = None,
        status: Annotated[RunStatus | None, Query(description="only runs in this status")] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 50,
        cursor: Annotated[
            str | None,
            Query(min_length=1, max_length=4096, description="`next_cursor` of the last page"),
        ] = None,
        created_after: Annotated[
            datetime | None,
            Query(description="only runs created at or after this ISO-8601 instant (UTC if naive)"),
        ] = None,
        created_before: Annotated[
            datetime | None,
            Query(description="only runs created before this ISO-8601 instant (UTC if naive)"),
        ] = None,
        tag: Annotated[
            str | None,
            Query(pattern=TAG_PATTERN, description="only runs with this tag (given at trigger)"),
        ] = None,
        finished_after: Annotated[
            datetime | None,
            Query(description="only runs finished at or after this instant (UTC if naive)"),
        ] = None,
        finished_before: Annotated[
            datetime | None,
            Query(description="only runs finished before this instant (UTC if naive)"),
        ] = None,
    ) -> RunListResponse:
        try:
            page = client.list(
                task_id=task_id,
                status=status,
                limit=limit,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
                tag=tag,
                finished_after=finished_after,
                finished_before=finished_before,
                values=False,
            )
        except InputError as exc:
            if cursor is None:
                raise
            # The rest was checked above: the store refused the cursor. Its words (a
            # backend's) stay out of the answer.
            raise RequestError(
                "invalid_cursor", "cursor is not a next_cursor of this listing"
            ) from exc
        return RunListResponse(
            runs=[RunSummary.of(view) for view in page.runs], next_cursor=page.next_cursor
        )

    @app.get(
        "/runs/<run_id>",
        summary="Get a run",
        description="A browser's request (`Accept` preferring text/html) gets the run's page.",
        responses=_responses(200, RunBody, "the run", 400, 404),
        tags=["runs"],
        middlewares=[html_for_browsers(_dashboard_html)],
    )
    def get_run(run_id: RunId) -> RunBody:
        return with_queue_position(RunBody.of(client.get(unquote(run_id))), client)

    @app.get(
        "/runs/<run_id>/history",
        summary="A run's checkpoint log, in order",
        responses=_responses(200, HistoryResponse, "the log", 400, 404),
        tags=["runs"],
    )
    def get_history(run_id: RunId) -> HistoryResponse:
        run_id = unquote(run_id)
        entries = client.history(run_id)
        return HistoryResponse(run_id=run_id, history=[HistoryEntryBody.of(e) for e in entries])

    @app.post(
        "/runs/<run_id>/events/<name>",
        status_code=202,
        summary="Send an event to a run",
        description="A `ctx.wait_for_event(name)` receives `data`, now or when it gets there. "
        "Names are 1-128 letters, digits and `-_.`, starting with a letter or digit.",
        responses=_responses(202, EventResponse, "delivered", 400, 404, 409, 413, 415),
        tags=["runs"],
    )
    def send_event(
        run_id: RunId,
        # The pattern is documented, and checked below (after percent-decoding, with its
        # own error code) rather than by the resolver.
        name: Annotated[str, Path(json_schema_extra={"pattern": EVENT_NAME_PATTERN})],
        body: Annotated[EventRequest | None, Body()] = None,
    ) -> EventResponse:
        run_id, name = unquote(run_id), unquote(name)
        try:
            event_name(name)
        except InvalidNameError as exc:
            raise RequestError("invalid_event_name", str(exc)) from None
        request = body or EventRequest()
        client.send_event(run_id, name, request.data, event_id=request.event_id)
        return EventResponse(run_id=run_id, event=name)

    @app.post("/runs/<run_id>/events", include_in_schema=False)
    @app.post("/runs/<run_id>/events/", include_in_schema=False)
    def send_unnamed_event(run_id: str) -> EventResponse:
        raise RequestError("invalid_event_name", "the event name is empty")

    @app.post(
        "/runs/<run_id>/cancel",
        summary="Cancel a run",
        responses=_responses(200, RunBody, "the run, now cancelled", 400, 404, 409),
        tags=["runs"],
    )
    def cancel(run_id: RunId) -> RunBody:
        return RunBody.of(client.cancel(unquote(run_id), by=caller_of(app)))

    @app.post(
        "/callbacks/<token>",
        status_code=202,
        summary="Complete a callback",
        description="Completes the callback once, with `data` or with an `error` raised in the "
        "run. Tokens are single-use: a second completion, or one after the timeout, is 409.",
        responses=_responses(202, CallbackResponse, "delivered", 400, 404, 409, 413, 415),
        tags=["callbacks"],
    )
    def complete_callback(
        token: str, body: Annotated[CallbackRequest | None, Body()] = None
    ) -> CallbackResponse:
        request = body or CallbackRequest()
        error = request.error
        client.complete_callback(
            unquote(token),
            data=request.data,
            error=error.model_dump() if isinstance(error, BaseModel) else error,
        )
        return CallbackResponse(completed=True)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=_openapi_document(app),
        )

    @app.get("/", include_in_schema=False)
    def dashboard() -> Response[str]:
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=_dashboard_html(),
        )

    register_dashboard_routes(app, client)
    return app


_documents: weakref.WeakKeyDictionary[APIGatewayHttpResolver, str] = weakref.WeakKeyDictionary()


def _openapi_document(app: APIGatewayHttpResolver) -> str:
    """The OpenAPI document, built once per resolver.

    Validation errors answer 400 in this API (see `durable.api.errors`), so the 422
    `HTTPValidationError` entries the resolver adds to every operation are taken out.
    """
    cached = _documents.get(app)
    if cached is not None:
        return cached
    from importlib.metadata import PackageNotFoundError, version

    try:
        api_version = version("durable")
    except PackageNotFoundError:
        api_version = "0.0.0"
    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE, version=api_version, description=API_DESCRIPTION
        )
    )
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            response = operation.get("responses", {}).get("422", {})
            if "HTTPValidationError" in json.dumps(response):
                del operation["responses"]["422"]
    schemas = document.get("components", {}).get("schemas", {})
    # Drop the resolver's own error schemas where no operation refers to them any more.
    paths = json.dumps(document.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f'/{name}"' not in paths:
            schemas.pop(name, None)
    add_task_operations(app, document)
    text = json.dumps(document, indent=2)
    _documents[app] = text
    return text


@cache
def _dashboard_html() -> str:
    return resources.files("durable.api").joinpath("static/index.html").read_text("utf-8")


_apps: weakref.WeakKeyDictionary[Client, APIGatewayHttpResolver] = weakref.WeakKeyDictionary()
# The resolver keeps the current request on the class, not the instance: resolve one at a
# time, so that a threaded local server cannot mix two requests up. Lambda never overlaps.
_resolve_lock = threading.Lock()


def app_for(client: Client) -> APIGatewayHttpResolver:
    """The resolver serving `client`, built on first use and kept as long as the client."""
    with _resolve_lock:
        app = _apps.get(client)
        if app is None:
            app = _apps[client] = build_app(client)
        return app


def handle(event: dict[str, Any], context: LambdaContext | None, client: Client) -> dict[str, Any]:
    """Resolve one API Gateway HTTP API (payload v2) event against `client`."""
    app = app_for(client)
    with _resolve_lock:
        return app.resolve(event, context)  # type: ignore[arg-type]  # None: no Lambda context locally
