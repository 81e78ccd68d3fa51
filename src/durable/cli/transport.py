"""How the client commands reach the API, and how they fail.

`make_transport` picks the transport from the `--url` / `--aws` options (`remote_options`)
and the environment: the HTTP API of a running server, or the API's own code in this process
on the AWS adapters, so that answers and errors are the same either way. `call` turns an
answer that is not 2xx into a `CliError`, which `main` prints with its exit code.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from durable.serialization import JsonData

DEFAULT_URL = "http://127.0.0.1:8000"
# Who the CLI says it is on every request (`durable.api.caller`): recorded, marked unverified,
# in the audit entries of the runs it repairs, unless an authorizer names the caller.
CALLER_HEADER = "X-Durable-Caller"


def cli_caller() -> str:
    """`cli <user>@<host>`, as this process can tell them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in the environment or the password database
        user = "unknown"
    return f"cli {user}@{socket.gethostname() or 'unknown'}"


class CliError(Exception):
    """A failure to report on stderr, with the exit code to end with."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Transport(Protocol):
    """Sends one API request; returns the status and the decoded JSON body."""

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]: ...


class HttpTransport:
    """The HTTP API of a running server (`durable dev` or API Gateway), over urllib."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                CALLER_HEADER: cli_caller(),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(
                f"cannot reach the durable API at {self.base_url} ({reason}).\n"
                "Is `durable dev` running? Start it with `make dev` (or `durable dev`), "
                "or point --url / DURABLE_URL at your API; use --aws to talk to AWS directly."
            ) from None


class InProcessTransport:
    """The API's own code in this process, on the AWS adapters that the environment names."""

    def __init__(self) -> None:
        from durable.bootstrap import get_runtime
        from durable.errors import DurableError

        try:
            self._client = get_runtime().client
        except (DurableError, ImportError) as exc:
            raise CliError(f"cannot set up the AWS runtime: {exc}") from None

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        from durable.api import handle
        from durable.local.gateway import build_event

        target = path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode("utf-8") if body is not None else b""
        event = build_event(
            method=method,
            target=target,
            headers=[("content-type", "application/json"), (CALLER_HEADER, cli_caller())],
            body=data,
        )
        response = handle(event, None, self._client)
        return int(response["statusCode"]), _decode(str(response.get("body") or "").encode())


def _decode(raw: bytes) -> JsonData:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def remote_options() -> argparse.ArgumentParser:
    """The options that pick the transport (`--url`, `--aws`): a parent parser to share."""
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--url", help=f"the API's base URL (default: $DURABLE_URL or {DEFAULT_URL})"
    )
    remote.add_argument(
        "--aws",
        action="store_true",
        help="talk to AWS directly (DynamoDB/SQS/S3 from the usual AWS and DURABLE_* env)",
    )
    return remote


def make_transport(args: argparse.Namespace) -> Transport:
    """HTTP unless `--aws` is given, or the AWS environment is set and no URL is."""
    url = args.url or os.environ.get("DURABLE_URL")
    aws_environment = bool(os.environ.get("AWS_REGION") and os.environ.get("DURABLE_TABLE_NAME"))
    if args.aws or (url is None and aws_environment):
        return InProcessTransport()
    return HttpTransport(url or DEFAULT_URL)


def call(
    transport: Transport,
    method: str,
    path: str,
    body: Any = None,
    query: dict[str, str] | None = None,
) -> JsonData:
    """The body of a 2xx answer; CliError with the API's message otherwise."""
    status, payload = transport.request(method, path, body, query)
    if 200 <= status < 300:
        return payload
    raise CliError(_error_message(status, payload), exit_code=2 if status < 500 else 1)


def _error_message(status: int, payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return f"the API answered {status}: {payload}"
    message = str(error.get("message", "request refused"))
    lines = [f"{message} ({status} {error.get('code', '')})"]
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and "msg" in detail and detail["msg"] not in message:
                where = ".".join(str(part) for part in detail.get("loc", ()))
                lines.append(f"  {where}: {detail['msg']}" if where else f"  {detail['msg']}")
    return "\n".join(lines)


def path_segment(value: str) -> str:
    """`value` quoted to be one segment of an API path (a run id, an event name)."""
    return quote(value, safe="")
