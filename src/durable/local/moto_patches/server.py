"""Patches 4, 5 (its server half), 6 and 9: moto's HTTP server without per-request waste.

4. No Nagle delay on the server's sockets (`WSGIRequestHandler.disable_nagle_algorithm`).
   werkzeug writes a response's headers and its body in two writes; with Nagle's algorithm
   the body waits for the client's ACK of the headers, which a keep-alive client delays by
   up to 40 ms: every request the SDK sends would take 40 ms, whatever moto's work.

5. Per-request constants computed once (the SQS half is in `sqs`): the names of a response
   class's methods (moto calls `inspect.getmembers` on every request).

6. A request counter for benchmarks: every request the server answers is counted by
   service and operation, and `GET /moto-api/durable/requests` returns the counts as JSON
   (`bench/dev_throughput.py` reads it for its AWS requests per run).

9. The module list behind moto's request routing computed once: `DomainDispatcherApplication`
   asks `moto.backends.list_of_moto_modules()` twice per request, which lists moto's
   package directory and stats every entry. The installed package does not change while
   the server runs.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from durable.local.moto_patches.originals import original, patch, patch_attribute

COUNTER_PATH = "/moto-api/durable/requests"

_requests: Counter[str] = Counter()
_requests_lock = threading.Lock()


def install() -> None:
    from moto import backends
    from moto.core import responses as moto_responses
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from werkzeug.serving import WSGIRequestHandler

    patch(DomainDispatcherApplication, "__call__", _counting_call)
    patch_attribute(WSGIRequestHandler, "disable_nagle_algorithm", True)
    patch(moto_responses, "method_names_from_class", _method_names)
    patch(backends, "list_of_moto_modules", _moto_modules)


def forget() -> None:
    """Drop the module list computed so far."""
    _moto_modules.cache_clear()


def request_counts() -> dict[str, int]:
    """Requests answered so far, by "service operation" (the counter of patch 6)."""
    with _requests_lock:
        return dict(_requests)


# -- 5. per-request constants computed once -----------------------------------------------


@functools.cache
def _method_names(clazz: object) -> list[str]:
    from moto.core import responses as moto_responses

    names: list[str] = original(moto_responses, "method_names_from_class")(clazz)
    return names


# -- 9. moto's module list, once -----------------------------------------------------------


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    from moto import backends

    return tuple(original(backends, "list_of_moto_modules")())


# -- 6. the request counter ---------------------------------------------------------------


def _counting_call(self: Any, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if environ.get("PATH_INFO") == COUNTER_PATH:
        body = json.dumps(request_counts(), sort_keys=True).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]
    name = _operation(environ)
    with _requests_lock:
        _requests[name] += 1
    return original(DomainDispatcherApplication, "__call__")(  # type: ignore[no-any-return]  # moto's method is untyped
        self, environ, start_response
    )


def _operation(environ: dict[str, Any]) -> str:
    """ "dynamodb PutItem", "sqs ReceiveMessage", "s3 PUT": what one request asks for."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    service = "?"
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service} {str(target).rsplit('.', 1)[-1]}"
    action = parse_qs(str(environ.get("QUERY_STRING", ""))).get("Action")
    if action:
        return f"{service} {action[0]}"
    return f"{service} {environ.get('REQUEST_METHOD', '?')}"
