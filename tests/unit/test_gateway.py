"""The dev stack's local API gateway: a handler that raises answers 500 and is logged once,
as a record the dev console formats (not a bare traceback on stderr)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from durable.local.gateway import LocalGateway


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_handler_that_raises_answers_500_and_logs_a_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise KeyError("missing")

    kept = Kept()
    runtime_logger = logging.getLogger("durable")  # the Powertools logger of the runtime
    runtime_logger.addHandler(kept)
    gateway = LocalGateway(("127.0.0.1", 0), broken)
    try:
        response = gateway.invoke({"rawPath": "/runs", "requestContext": {"requestId": "r-1"}})
    finally:
        gateway.server_close()
        runtime_logger.removeHandler(kept)

    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"message": "Internal Server Error"}
    [record] = kept.records
    assert record.getMessage() == "the API handler raised"
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert "Traceback" not in capsys.readouterr().err
