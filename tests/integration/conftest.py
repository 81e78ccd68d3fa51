"""Fixtures of the AWS adapter tests: moto in-process, with the runtime's resources created."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from durable.resources import ensure_resources
from durable.settings import Settings

REGION = "us-east-1"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint override: requests must reach moto, never AWS."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        table_name="it-runs",
        queue_name="it-wakeups",
        bucket_name="it-values",
        region=REGION,
        endpoint_url=None,
    )


@pytest.fixture
def queue_url(aws_credentials: None, settings: Settings) -> Iterator[str]:
    """Everything `ensure_resources` creates, inside a fresh moto account."""
    with mock_aws():
        yield ensure_resources(settings)
