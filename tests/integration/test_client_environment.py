"""`durable.Client.from_environment()`: the client a user's script gets from the
`DURABLE_*` environment, on moto."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import durable
from durable.bootstrap import reset_runtime
from durable.settings import Settings


@pytest.fixture
def environment(
    queue_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DURABLE_TABLE_NAME", settings.table_name)
    monkeypatch.setenv("DURABLE_QUEUE_URL", queue_url)
    monkeypatch.setenv("DURABLE_BUCKET_NAME", settings.bucket_name)
    monkeypatch.setenv("DURABLE_TASK_MODULES", "tasks")
    reset_runtime()
    yield
    reset_runtime()


def test_a_client_from_the_environment_triggers_and_reads_runs(environment: None) -> None:
    client = durable.Client.from_environment()
    handle = client.trigger("process-order", {"order_id": "o-env"}, idempotency_key="env-1")

    again = durable.Client.from_environment().trigger(
        "process-order", {"order_id": "o-env"}, idempotency_key="env-1"
    )
    info = client.get(handle.run_id)

    assert again.run_id == handle.run_id and not again.created
    assert info.status == durable.RunStatus.QUEUED
    assert info.payload["order_id"] == "o-env"
    assert [run.run_id for run in client.list(task_id="process-order").runs] == [handle.run_id]
