"""On moto, counted as AWS answers: the run page's polls of a live run's timeline read each
log item once and each S3-stored value once; a cold client reads them all at every poll."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from botocore.client import BaseClient

from durable import Context, RunStatus, TaskRegistry, task
from durable.client import Client
from durable.storage import _tables
from durable.testing import TestEnvironment
from durable.values import BLOB_PREFIX

TICKS = 6
POLLS = TICKS + 1


@dataclass
class Reads:
    """The log items DynamoDB's Query answers return, and the S3 GetObjects, of a reader."""

    log_items: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)


class Requests:
    """AWS reads made inside `counting(reads)`, put in `reads`."""

    def __init__(self) -> None:
        self.current: Reads | None = None

    @contextmanager
    def counting(self, reads: Reads) -> Iterator[Reads]:
        self.current = reads
        try:
            yield reads
        finally:
            self.current = None


@pytest.fixture
def aws_reads(monkeypatch: pytest.MonkeyPatch) -> Requests:
    seen = Requests()
    make_api_call = BaseClient._make_api_call

    def counted(client: Any, operation_name: str, api_params: Any) -> Any:
        answer = make_api_call(client, operation_name, api_params)
        reads = seen.current
        if reads is not None and operation_name == "Query":
            keys = (item.get("sk", {}).get("S", "") for item in answer.get("Items", []))
            reads.log_items.extend(k for k in keys if k.startswith(_tables.CHECKPOINT_PREFIX))
        if reads is not None and operation_name == "GetObject":
            reads.objects.append(api_params["Key"])
        return answer

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    return seen


def test_polls_of_a_live_run_read_each_log_item_and_each_s3_value_once(
    aws_reads: Requests,
) -> None:
    registry = TaskRegistry()

    @task(id="ticker", registry=registry)
    def ticker(ctx: Context, payload: None) -> int:
        for i in range(TICKS):
            ctx.step(f"tick-{i}", lambda i=i: {"i": i, "pad": "x" * 400} if i % 2 == 0 else i)
            ctx.sleep(f"wait-{i}", timedelta(minutes=1))
        return TICKS

    with TestEnvironment(backend="moto", registry=registry, inline_limit=256) as env:
        run_id = env.trigger("ticker").run_id
        env.run_until_idle()
        warm, cold_polls = Reads(), []

        for _ in range(POLLS):
            with aws_reads.counting(warm):
                timeline = env.client.timeline(run_id)
            cold = Client(
                store=env.runtime_store, queue=env.runtime_queue, codec=env.codec, clock=env.clock
            )
            with aws_reads.counting(Reads()) as cold_poll:
                assert timeline == cold.timeline(run_id)
            cold_polls.append(cold_poll)
            env.advance(timedelta(minutes=1))

        log = env.store.load_history(run_id)
        stored = [cp.value for cp in log if cp.value and cp.value.startswith(BLOB_PREFIX)]
        assert env.get(run_id).status is RunStatus.COMPLETED and len(stored) == TICKS // 2
        # the warm client: each log item and each value in S3 came once over all the polls
        assert sorted(warm.log_items) == [_tables.checkpoint_sk(cp.seq) for cp in log]
        assert Counter(warm.objects) == Counter(v.removeprefix(BLOB_PREFIX) for v in stored)
        # a cold one read the whole log, and every value in S3 it held, at each poll
        last = cold_polls[-1]
        assert len(last.log_items) == len(log) and len(last.objects) == len(stored)
        assert sum(len(poll.objects) for poll in cold_polls) > 2 * len(stored)
