"""Who an API request came from, as audit entries record it (`durable.api.caller`)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from durable.api.caller import caller_of


def _event(headers: dict[str, str], authorizer: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {
        "http": {"method": "GET", "path": "/who", "sourceIp": "127.0.0.1"},
        "requestId": "r",
        "stage": "$default",
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/who",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def _who(headers: dict[str, str], authorizer: dict[str, Any] | None = None) -> str:
    app = APIGatewayHttpResolver()

    @app.get("/who")
    def who() -> dict[str, str]:
        return {"caller": caller_of(app)}

    answer = app.resolve(_event(headers, authorizer), None)  # type: ignore[arg-type]
    return str(json.loads(answer["body"])["caller"])


@pytest.mark.parametrize(
    ("headers", "authorizer", "expected"),
    [
        ({}, None, "anonymous"),
        ({"x-durable-caller": "cli alice@laptop"}, None, "unverified:cli alice@laptop"),
        ({"x-durable-caller": "  \x00\x1b  "}, None, "anonymous"),
        (
            {"x-durable-caller": "cli mallory@x"},
            {"iam": {"userArn": "arn:aws:iam::123456789012:user/alice"}},
            "iam:arn:aws:iam::123456789012:user/alice",
        ),
        ({"x-durable-caller": "cli mallory@x"}, {"jwt": {"claims": {"sub": "u-1"}}}, "jwt:u-1"),
    ],
)
def test_the_authenticated_principal_wins_over_what_the_caller_says(
    headers: dict[str, str], authorizer: dict[str, Any] | None, expected: str
) -> None:
    assert _who(headers, authorizer) == expected


def test_a_declared_caller_is_cut_to_a_bounded_length() -> None:
    assert _who({"x-durable-caller": "x" * 1000}) == "unverified:" + "x" * 128
