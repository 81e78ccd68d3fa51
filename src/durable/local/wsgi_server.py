"""A small threaded HTTP/1.1 WSGI server that keeps connections alive, for the dev moto.

werkzeug's development server answers every request with `Connection: close`, so each AWS
call the stack makes opened a TCP connection and started a server thread: a handshake, a
thread and the SDK's connection setup per request, about a fifth of moto's time. Here one
thread serves one connection for as long as the client keeps it (botocore pools them).

The application must give a `Content-Length` (the dev moto server always does). Request
bodies come with a `Content-Length` or chunked; `Expect: 100-continue` is answered by
`http.server` itself.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote_to_bytes

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class KeepAliveHandler(BaseHTTPRequestHandler):
    """One connection: each request in turn to the WSGI application."""

    server: KeepAliveServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one write: no Nagle delay, no second syscall.
    disable_nagle_algorithm = True

    def do_request(self) -> None:
        body = self._read_body()
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        chunks = self.server.application(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = started
        lines = [f"{self.protocol_version} {status}\r\n"]
        if self.command == "HEAD":  # the length of what a GET would give, and no body
            lines += [f"{name}: {value}\r\n" for name, value in headers]
            payload = b""
        else:
            kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
            lines += [f"{name}: {value}\r\n" for name, value in kept]
            lines.append(f"Content-Length: {len(payload)}\r\n")
        lines.append("\r\n")
        self.wfile.write("".join(lines).encode("latin-1") + payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_request

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per AWS call would drown the console


class KeepAliveServer(ThreadingHTTPServer):
    """`ThreadingHTTPServer` serving a WSGI application over kept-alive connections."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], application: WsgiApp) -> None:
        self.application = application
        super().__init__(address, KeepAliveHandler)
