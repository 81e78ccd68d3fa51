"""The dev stack's local API gateway: a handler that raises answers 500 and is logged once,
as a record the dev console formats (not a bare traceback on stderr)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from durable.local.gateway import LocalGateway


def test_a_handler_that_raises_answers_500_and_logs_a_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise KeyError("missing")

    gateway = LocalGateway(("127.0.0.1", 0), broken)
    try:
        response = gateway.invoke({"rawPath": "/runs", "requestContext": {"requestId": "r-1"}})
    finally:
        gateway.server_close()

    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"message": "Internal Server Error"}
    captured = capsys.readouterr()
    [record] = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    assert record["message"] == "the API handler raised"
    assert record["path"] == "/runs"
    assert "KeyError: 'missing'" in record["exception"]
    assert "Traceback" not in captured.err
