"""On moto, counted as DynamoDB answers: a warm worker reads each log entry of a run once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.client import BaseClient

from durable import Context, RunStatus, TaskRegistry, task
from durable.storage import _tables
from durable.storage.log_cache import LogCache
from durable.testing import TestEnvironment

STEPS = 10


def _log_items_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sort keys of the log entries DynamoDB returns to Query calls, as they come."""
    read: list[str] = []
    make_api_call = BaseClient._make_api_call

    def counted(client: Any, operation_name: str, api_params: Any) -> Any:
        answer = make_api_call(client, operation_name, api_params)
        if operation_name == "Query":
            keys = (item.get("sk", {}).get("S", "") for item in answer.get("Items", []))
            read.extend(key for key in keys if key.startswith(_tables.CHECKPOINT_PREFIX))
        return answer

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    return read


@pytest.mark.parametrize("cached", [True, False])
def test_a_run_of_many_invocations_reads_each_log_item_once(
    monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    registry = TaskRegistry()

    @task(id="stepper", registry=registry)
    def stepper(ctx: Context, payload: None) -> int:
        total = 0
        for i in range(STEPS):
            total += ctx.step(f"add-{i}", lambda i=i: i)
            ctx.sleep(f"pause-{i}", timedelta(minutes=1))
        return total

    with TestEnvironment(backend="moto", registry=registry) as env:
        if not cached:
            env.worker.log_cache = LogCache(env.runtime_store, max_runs=0)
        read = _log_items_read(monkeypatch)

        run = env.trigger("stepper")
        info = env.run_until_complete(run.run_id)

        monkeypatch.undo()
        assert info.status == RunStatus.COMPLETED and info.result == sum(range(STEPS))
        slots = [_tables.checkpoint_sk(cp.seq) for cp in env.store.load_history(run.run_id)]
        assert len(slots) == 2 * STEPS
        if cached:
            assert sorted(read) == slots  # each once
        else:
            # Every invocation reads the whole log before it: 0 + 2 + 4 + ... entries.
            assert len(read) == sum(2 * i for i in range(STEPS + 1))
