"""Requests to moto as the dev stack's moto server keeps and replays them.

A `Request` is as much of a WSGI environ as replaying it needs, and its body; its service
(from the signature's credential scope) and action (`X-Amz-Target`) say whether it changed
anything. `synthetic_request` makes the requests the server sends moto itself, to restore
or dump the state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

ACCOUNT_AND_REGION_HEADERS = {
    "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20200101/{region}/{service}/"
    "aws4_request, SignedHeaders=host, Signature=0",
}
# The SDK app id (AWS_SDK_UA_APP_ID) of the dev stack's worker processes: moto serves their
# requests after the stack's own (the API's) when both wait (`moto_server.TurnLock`).
BACKGROUND_APP_ID = "durable-worker"
_SERVICE = re.compile(r"Credential=[^/]*/[^/]*/([^/]*)/([^/]*)/")


@dataclass(slots=True)
class Request:
    """One HTTP request, as much of its WSGI environ as replaying it needs."""

    environ: dict[str, Any]
    body: bytes

    @property
    def service(self) -> str:
        found = _SERVICE.search(self.environ.get("HTTP_AUTHORIZATION", ""))
        if found:
            return found.group(2)
        query = self.environ.get("QUERY_STRING", "")
        credential = parse_qs(query).get("X-Amz-Credential", [""])[0]
        parts = credential.split("/")
        return parts[3] if len(parts) > 3 else "s3"

    @property
    def region(self) -> str:
        found = _SERVICE.search(self.environ.get("HTTP_AUTHORIZATION", ""))
        return found.group(1) if found else "us-east-1"

    @property
    def target(self) -> str:
        """The action of a JSON-protocol request (`PutItem`, `SendMessage`), or ""."""
        return str(self.environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]

    def json(self) -> dict[str, Any]:
        loaded = json.loads(self.body or b"{}")
        return loaded if isinstance(loaded, dict) else {}

    def to_record(self) -> dict[str, Any]:
        return {"kind": "raw", "environ": self.environ, "body": self.body}


def replayable_environ(environ: dict[str, Any]) -> dict[str, Any]:
    kept = {
        name: value
        for name, value in environ.items()
        if name.startswith("HTTP_")
        or name
        in (
            "REQUEST_METHOD",
            "PATH_INFO",
            "QUERY_STRING",
            "CONTENT_TYPE",
            "SERVER_NAME",
            "SERVER_PORT",
            "SERVER_PROTOCOL",
            "SCRIPT_NAME",
        )
    }
    kept.setdefault("SCRIPT_NAME", "")
    return kept


def synthetic_request(
    service: str,
    *,
    method: str = "POST",
    path: str = "/",
    target: str | None = None,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    region: str = "us-east-1",
) -> Request:
    """A request this server makes to moto itself (to restore or dump state)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SCRIPT_NAME": "",
        "HTTP_HOST": "localhost:5000",
        "HTTP_AUTHORIZATION": ACCOUNT_AND_REGION_HEADERS["HTTP_AUTHORIZATION"].format(
            region=region, service=service
        ),
    }
    if target is not None:
        environ["HTTP_X_AMZ_TARGET"] = target
        environ["CONTENT_TYPE"] = "application/x-amz-json-1.0"
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE",) else f"HTTP_{key}"] = value
    return Request(environ, body)


@dataclass(slots=True)
class Response:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")

    def json(self) -> dict[str, Any]:
        loaded = json.loads(self.body or b"{}")
        return loaded if isinstance(loaded, dict) else {}


@dataclass(slots=True)
class QueuedMessage:
    """A message sent and not yet deleted, as much as sending it again needs."""

    queue: str
    body: str
    attributes: dict[str, Any]
    visible_at: float  # wall-clock seconds
    system_attributes: dict[str, Any] = field(default_factory=dict)


def queue_name(url: str) -> str:
    """The name of the queue at `url` (its last path segment)."""
    return urlsplit(url).path.rstrip("/").rpartition("/")[2]
