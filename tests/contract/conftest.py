"""Fixtures of the RunStore contract suite: one `store` per backend (memory, moto)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from durable.storage._tables import create_table
from durable.storage.base import RunStore
from durable.storage.dynamodb import DynamoDBRunStore
from durable.storage.memory import MemoryRunStore

TABLE = "contract-runs"
REGION = "us-east-1"
# Small pages, so that every query of the moto store pages several times.
PAGE_SIZE = 25
# The shard count of `sharded_store`'s table: small, so that pages cut across shards.
SHARDS = 4


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
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["memory", "moto"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> Iterator[RunStore]:
    if backend == "memory":
        yield MemoryRunStore()
        return
    request.getfixturevalue("aws_credentials")
    with mock_aws():
        create_table(TABLE, REGION)
        yield DynamoDBRunStore(TABLE, region=REGION, page_size=PAGE_SIZE)


@pytest.fixture
def sharded_store(backend: str, request: pytest.FixtureRequest) -> Iterator[RunStore]:
    """Like `store`, on a table whose indexes have `SHARDS` shards (the memory store has
    none: it is the reference the sharded listings must match)."""
    if backend == "memory":
        yield MemoryRunStore()
        return
    request.getfixturevalue("aws_credentials")
    with mock_aws():
        create_table(TABLE, REGION, shards=SHARDS)
        yield DynamoDBRunStore(TABLE, region=REGION, page_size=PAGE_SIZE)
