"""The dev moto's HTTP server keeps connections alive and hands WSGI what werkzeug would."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from durable.local.wsgi_server import KeepAliveServer


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0))
    answer = json.dumps(
        {
            "method": environ["REQUEST_METHOD"],
            "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"],
            "body": body.decode("latin-1"),
            "target": environ.get("HTTP_X_AMZ_TARGET"),
            "content_type": environ["CONTENT_TYPE"],
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "999")])
    return [answer]


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    served = KeepAliveServer(("127.0.0.1", 0), echo)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    yield served
    served.shutdown()
    served.server_close()


def test_one_connection_carries_many_requests(server: KeepAliveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    sockets = set()
    for n in range(3):
        connection.request(
            "POST",
            "/a%20b/c?x=1",
            body=f"item {n}",
            headers={"X-Amz-Target": "DynamoDB_20120810.PutItem", "Content-Type": "text/plain"},
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
        sockets.add(id(connection.sock))
        assert response.status == 200
        assert response.getheader("Connection") is None  # not "close"
        assert answer == {
            "method": "POST",
            "path": "/a b/c",
            "query": "x=1",
            "body": f"item {n}",
            "target": "DynamoDB_20120810.PutItem",
            "content_type": "text/plain",
        }
        assert int(response.getheader("Content-Length")) == len(json.dumps(answer))
    assert len(sockets) == 1  # the same socket each time
    connection.close()


def test_a_chunked_body_arrives_whole(server: KeepAliveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    connection.request("PUT", "/bucket/key", body=iter([b"first ", b"second"]), encode_chunked=True)
    answer = json.loads(connection.getresponse().read())
    assert answer["body"] == "first second"
    connection.close()


def test_head_keeps_the_length_and_sends_no_body(server: KeepAliveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    connection.request("HEAD", "/bucket/key")
    response = connection.getresponse()
    assert response.getheader("Content-Length") == "999"  # what the application said
    assert response.read() == b""
    connection.request("GET", "/after-head")  # and the connection is still usable
    assert json.loads(connection.getresponse().read())["path"] == "/after-head"
    connection.close()
