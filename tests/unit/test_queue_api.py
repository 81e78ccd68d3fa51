"""Queues as callers see them: `max_size` refusing a trigger (`QueueFullError` in Python,
429 over HTTP, nothing stored), `GET /queues` and `GET /queues/{name}`, a waiting run's
place in `GET /runs/{id}`, `GET /tasks`' queue, and `durable queues`, on memory and moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_api import Api

from durable import Context, Queue, QueueFullError, TaskRegistry, task
from durable.api import handle
from durable.cli import main
from durable.local.gateway import LocalGateway
from durable.records import RunStatus
from durable.testing import Backend, TestEnvironment

SMALL = Queue("small", concurrency=1, max_size=2, release_on_wait=False)


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="gated", registry=registry, queue=SMALL)
    def gated(ctx: Context, payload: Any) -> Any:
        ctx.wait_for_event("go")
        return payload

    @task(id="also-gated", registry=registry, queue=SMALL)
    def also_gated(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="plain", registry=registry)
    def plain(ctx: Context, payload: Any) -> Any:
        return payload

    return registry


def _fill(env: TestEnvironment, key: str | None = None) -> list[str]:
    """One run holding the slot (waiting for an event), two waiting: the queue is full."""
    runs = []
    for n in range(3):
        env.advance(timedelta(milliseconds=1))  # run ids sort by creation, to the millisecond
        runs.append(env.trigger("gated", n, concurrency_key=key).run_id)
    env.run_until_idle()
    return runs


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_full_queue_refuses_a_trigger_and_stores_nothing(backend: Backend) -> None:
    with TestEnvironment(backend=backend, registry=_registry()) as env:
        first, *waiting = _fill(env)
        assert [env.get(run).status for run in waiting] == [RunStatus.QUEUED] * 2
        stored = len(env.client.list().runs)
        with pytest.raises(QueueFullError, match="queue 'small' has 2 runs waiting") as refused:
            env.trigger("also-gated", 1)
        assert (refused.value.queue, refused.value.max_size, refused.value.code) == (
            "small",
            2,
            "queue_full",
        )
        assert len(env.client.list().runs) == stored
        # Another key has its own room; a task of its own queue is not limited.
        env.trigger("also-gated", 1, concurrency_key="other")
        env.trigger("plain", 1)
        # Once the first run ends, a waiter takes its slot and there is room again.
        env.send_event(first, "go", {})
        env.run_until_idle()
        assert env.get(first).status is RunStatus.COMPLETED
        env.trigger("also-gated", 2)


def test_a_run_s_children_are_never_refused_by_a_full_queue() -> None:
    registry = _registry()

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: Any) -> Any:
        return ctx.trigger("also-gated", 7)

    with TestEnvironment(registry=registry) as env:
        _fill(env)
        with pytest.raises(QueueFullError):
            env.trigger("also-gated", 1)
        run = env.trigger("parent", None)
        info = env.run_until_complete(run.run_id)
        assert info.status is RunStatus.COMPLETED
        child = env.get(info.result)
        assert (child.task_id, child.waiting_for) == ("also-gated", "queue:small")


def test_a_full_queue_answers_429_with_a_json_body() -> None:
    with TestEnvironment(registry=_registry()) as env:
        _fill(env, key="t1")
        api = Api(env.client)
        before = len(env.client.list().runs)
        reply = api.post("/tasks/also-gated/runs", {"payload": 1, "concurrency_key": "t1"})
        assert reply.status == 429, reply.text
        assert reply.json["error"]["code"] == "queue_full"
        assert "max_size" in reply.json["error"]["message"]
        assert len(env.client.list().runs) == before
        assert api.post("/tasks/also-gated/runs", {"payload": 1}).status == 202


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_get_queues_shows_limits_tasks_and_usage_summed_over_keys(backend: Backend) -> None:
    with TestEnvironment(backend=backend, registry=_registry()) as env:
        _fill(env, key="a")
        _fill(env, key="b")
        api = Api(env.client)
        listing = api.get("/queues")
        assert listing.status == 200, listing.text
        (small,) = listing.json["queues"]
        assert small == {
            "name": "small",
            "concurrency": 1,
            "release_on_wait": False,
            "rate_limit": None,
            "max_size": 2,
            "debounce_seconds": None,
            "tasks": ["also-gated", "gated"],
            "running": 2,
            "waiting": 4,
            "keys_capped": False,
            "keys": None,
        }
        one = api.get("/queues/small").json
        assert one["keys"] == [
            {"key": "a", "running": 1, "waiting": 2},
            {"key": "b", "running": 1, "waiting": 2},
        ]
        missing = api.get("/queues/nope")
        assert missing.status == 404 and missing.json["error"]["code"] == "queue_not_found"
        tasks = {task["task_id"]: task["queue"] for task in api.get("/tasks").json["tasks"]}
        assert tasks == {"gated": "small", "also-gated": "small", "plain": "plain"}
        assert "/queues" in api.get("/openapi.json").json["paths"]
        metrics = api.get("/metrics").json
        assert metrics["queues"] == [
            {"name": "small", "concurrency": 1, "running": 2, "waiting": 4, "keys_capped": False}
        ]


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_waiting_run_shows_its_queue_and_place(backend: Backend) -> None:
    with TestEnvironment(backend=backend, registry=_registry()) as env:
        first, second, third = _fill(env)
        api = Api(env.client)
        shown = [api.get(f"/runs/{run}").json for run in (first, second, third)]
        assert [(run["status"], run["waiting_for"], run["queue_position"]) for run in shown] == [
            ("WAITING", "go", None),
            ("QUEUED", "queue:small", 1),
            ("QUEUED", "queue:small", 2),
        ]


@pytest.fixture
def url() -> Iterator[str]:
    with TestEnvironment(registry=_registry()) as env:
        _fill(env)
        gateway = LocalGateway(
            ("127.0.0.1", 0), lambda event, context: handle(event, context, env.client)
        )
        gateway.serve_in_thread()
        try:
            yield gateway.url
        finally:
            gateway.shutdown()
            gateway.server_close()


def test_durable_queues_prints_a_table_and_one_queue_by_key(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["queues", "--url", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "QUEUE",
        "CONCURRENCY",
        "RELEASE",
        "ON",
        "WAIT",
        "MAX",
        "SIZE",
        "RUNNING",
        "WAITING",
        "TASKS",
    ]
    assert out[1].split() == ["small", "1", "no", "2", "1", "2", "also-gated,", "gated"]
    assert main(["queues", "small", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "KEY  RUNNING  WAITING\n-    1        2" in out
    # The runs list says what each unfinished run waits for: the holder its event, the others
    # a slot.
    assert main(["runs", "--url", url]) == 0
    runs = capsys.readouterr().out.splitlines()
    assert runs[0].split()[-2:] == ["WAITING", "FOR"]
    assert sorted(line.split()[-1] for line in runs[1:]) == ["go", "queue:small", "queue:small"]
    assert main(["queues", "nope", "--url", url]) == 2
    assert "no task declares a queue named 'nope'" in capsys.readouterr().err
    # A trigger into the full queue: exit code 2, the API's reason.
    assert main(["trigger", "also-gated", "--payload", "1", "--url", url]) == 2
    assert "(429 queue_full)" in capsys.readouterr().err
