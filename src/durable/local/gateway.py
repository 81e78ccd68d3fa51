"""A local API Gateway: HTTP requests in, HTTP API (payload v2) events to the API handler out.

    HTTP request ─► size check (413 over 6 MB, before reading the body) ─► v2 event
                 ─► handler(event, context) ─► proxy response dict ─► HTTP response

What API Gateway does that matters here: a body over Lambda's 6 MB request limit never
reaches the function; headers arrive lower-cased with repeated ones joined by commas;
cookies travel apart; a body that is not UTF-8 text arrives base64-encoded; a handler that
raises becomes `500 {"message": "Internal Server Error"}`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from durable.local.lambda_context import ACCOUNT_ID, LocalLambdaContext
from durable.logs import library_logger
from durable.values import REQUEST_LIMIT

ApiHandler = Callable[[dict[str, Any], Any], Any]

# API Gateway's own integration timeout.
API_TIME_LIMIT = 29.0


DEV_INFO_PATH = "/.well-known/durable-dev"


class BodyTooLarge(Exception):
    """The request body is over the limit."""


class LocalGateway(ThreadingHTTPServer):
    """Serves one API handler on a local port, as API Gateway would in front of Lambda."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: ApiHandler,
        *,
        function_name: str = "durable-api",
        max_body: int = REQUEST_LIMIT,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(address, GatewayRequestHandler)
        self.api_handler = handler
        self.function_name = function_name
        self.max_body = max_body
        self.access_log = access_log
        # What `durable invoke` needs to reach this stack (its moto, table, queue, bucket),
        # served at DEV_INFO_PATH; None until the stack has created its resources.
        self.dev_info: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        """Where this machine reaches the gateway (127.0.0.1 when it listens on 0.0.0.0)."""
        host, port = self.server_address[:2]
        if str(host) == "0.0.0.0":
            host = "127.0.0.1"
        return f"http://{host!s}:{port}"

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="gateway", daemon=True)
        thread.start()
        return thread

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the handler with `event`; its answer as a proxy response."""
        context = LocalLambdaContext(
            self.function_name, API_TIME_LIMIT, request_id=event["requestContext"]["requestId"]
        )
        try:
            response = self.api_handler(event, context)
        except Exception:
            # Through the runtime's logger: the dev console formats it like every record.
            library_logger().exception("the API handler raised", path=event.get("rawPath"))
            return _json_response(500, {"message": "Internal Server Error"})
        return normalize_response(response)


class GatewayRequestHandler(BaseHTTPRequestHandler):
    """One HTTP connection; each request becomes one API event."""

    server: LocalGateway
    protocol_version = "HTTP/1.1"
    server_version = "durable-dev"
    # The headers and the body go out in two writes: with Nagle's algorithm the body would
    # wait for the client's delayed ACK of the headers, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def handle_expect_100(self) -> bool:
        # A client that asks first learns of the 413 before it sends a byte of the body.
        if self._declared_length() > self.server.max_body:
            self._refuse_too_large()
            return False
        return super().handle_expect_100()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one access line per request is written by `_handle` instead

    def _handle(self) -> None:
        started = time.monotonic()
        if self.command == "GET" and self.path == DEV_INFO_PATH and self.server.dev_info:
            self._write(_json_response(200, self.server.dev_info))
            return
        try:
            body = self._read_body()
        except BodyTooLarge:
            self._refuse_too_large()
            self._log_access(413, started)
            return
        except ValueError as exc:
            self.close_connection = True
            self._write(_json_response(400, _error("bad_request", str(exc))))
            self._log_access(400, started)
            return
        event = build_event(
            method=self.command,
            target=self.path,
            headers=[(name, value) for name, value in self.headers.items()],
            body=body,
            source_ip=str(self.client_address[0]),
            protocol=self.request_version,
        )
        response = self.server.invoke(event)
        self._write(response)
        self._log_access(int(response["statusCode"]), started)

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length", "0") or 0)
        except ValueError:
            return 0

    def _read_body(self) -> bytes:
        """The request body; `BodyTooLarge` as soon as it is known to be over the limit."""
        limit = self.server.max_body
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise ValueError(f"invalid Content-Length {raw_length!r}") from None
        if length < 0:
            raise ValueError(f"invalid Content-Length {raw_length!r}")
        if length > limit:
            raise BodyTooLarge
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ValueError("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > limit:
                raise BodyTooLarge
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk

    def _refuse_too_large(self) -> None:
        # The rest of the body is never read, so the connection cannot be reused.
        self.close_connection = True
        limit_mb = self.server.max_body / (1024 * 1024)
        message = f"the request body is over the {limit_mb:g} MB limit"
        self._write(_json_response(413, _error("payload_too_large", message)))

    def _write(self, response: dict[str, Any]) -> None:
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            data = base64.b64decode(body)
        else:
            data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        self.send_response(int(response["statusCode"]))
        for name, value in (response.get("headers") or {}).items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, str(value))
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                self.send_header(name, str(value))
        for cookie in response.get("cookies") or []:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _log_access(self, status: int, started: float) -> None:
        # Reads that succeed are left out: the dashboard polls every few seconds.
        quiet_read = self.command in ("GET", "HEAD") and status < 400
        if self.server.access_log is not None and not quiet_read:
            millis = (time.monotonic() - started) * 1000
            self.server.access_log(f"{self.command} {self.path} {status} {millis:.0f}ms")


def build_event(
    *,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event of one request."""
    now = now or datetime.now(UTC)
    parts = urlsplit(target)
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    request_id = str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": joined.get("host", "localhost"),
            "domainPrefix": joined.get("host", "localhost").split(".")[0],
            "http": {
                "method": method.upper(),
                "path": parts.path or "/",
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": text is None,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = text if text is not None else base64.b64encode(body).decode("ascii")
    return event


def normalize_response(response: Any) -> dict[str, Any]:
    """A handler's answer as a proxy response; like API Gateway, a bare value is 200 JSON."""
    if isinstance(response, dict) and "statusCode" in response:
        return response
    return _json_response(200, response)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _json_response(status: int, value: Any) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(value),
        "isBase64Encoded": False,
    }
