"""Declaring queues (`durable.flow`) and giving a trigger its flow-control options: what is
accepted, what is refused (a typed exception in Python, a 400 over HTTP, nothing stored),
and what a run records, on memory and moto."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.unit.test_api import Api

from durable import Context, Queue, RateLimit, TaskRegistry, task
from durable.errors import InputError
from durable.testing import Backend, TestEnvironment

LLM = Queue("llm", concurrency=5, rate_limit=RateLimit(10, timedelta(minutes=1)))


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="summarize", registry=registry, queue=LLM)
    def summarize(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="translate", registry=registry, queue=LLM)
    def translate(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="plain", registry=registry)
    def plain(ctx: Context, payload: Any) -> Any:
        return payload

    return registry


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": ""}, "1 to 64"),
        ({"name": "has space"}, "1 to 64"),
        ({"name": "q", "concurrency": 0}, "concurrency must be 1 to 1000"),
        ({"name": "q", "concurrency": 1001}, "concurrency must be 1 to 1000"),
        ({"name": "q", "concurrency": True}, "concurrency must be 1 to 1000"),
        ({"name": "q", "max_size": 0}, "max_size"),
        ({"name": "q", "debounce": timedelta(0)}, "debounce"),
    ],
)
def test_a_bad_queue_is_refused_when_declared(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Queue(**settings)


def test_a_bad_rate_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        RateLimit(0, timedelta(minutes=1))
    with pytest.raises(ValueError, match="at least a second"):
        RateLimit(5, timedelta(milliseconds=10))


def test_tasks_share_a_queue_and_each_other_task_has_its_own() -> None:
    registry = _registry()
    assert registry.queues() == {"llm": LLM, "plain": None}
    assert registry.get("plain").queue_name == "plain"
    assert Queue("llm", concurrency=5).limited and not Queue("free").limited


def test_one_name_with_two_settings_is_refused() -> None:
    registry = _registry()
    with pytest.raises(ValueError, match="queue 'llm' is declared with other settings"):

        @task(id="other", registry=registry, queue=Queue("llm", concurrency=2))
        def other(ctx: Context, payload: Any) -> Any:
            return payload


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_run_records_its_queue_key_priority_and_start_deadline(backend: Backend) -> None:
    with TestEnvironment(backend=backend, registry=_registry()) as env:
        handle = env.trigger(
            "summarize",
            1,
            delay=timedelta(minutes=2),
            concurrency_key="tenant:acme",
            priority=7,
            ttl=timedelta(hours=1),
        )
        stored = env.store.get_run(handle.run_id)
        assert stored is not None
        assert (stored.queue, stored.concurrency_key, stored.priority) == ("llm", "tenant:acme", 7)
        assert stored.start_by == stored.created_at + timedelta(minutes=2, hours=1)
        view = env.get(handle.run_id)
        assert (view.queue, view.concurrency_key, view.priority) == ("llm", "tenant:acme", 7)
        plain = env.store.get_run(env.trigger("plain", 1).run_id)
        assert plain is not None
        assert (plain.queue, plain.concurrency_key, plain.priority, plain.start_by) == (
            "plain",
            None,
            0,
            None,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency_key": ""}, "concurrency_key"),
        ({"concurrency_key": "a b"}, "concurrency_key"),
        ({"priority": -1}, "priority must be 0 to 100"),
        ({"priority": 101}, "priority must be 0 to 100"),
        ({"ttl": timedelta(0)}, "ttl"),
    ],
)
def test_bad_trigger_options_are_refused_and_nothing_is_stored(
    options: dict[str, Any], message: str
) -> None:
    with TestEnvironment(registry=_registry()) as env:
        with pytest.raises(InputError, match=message):
            env.trigger("summarize", 1, **options)
        assert env.client.list().runs == []


def test_the_http_api_takes_the_options_and_refuses_bad_ones_with_400() -> None:
    with TestEnvironment(registry=_registry()) as env:
        api = Api(env.client)
        body = {"payload": 1, "concurrency_key": "user:9", "priority": 3, "ttl_seconds": 60}
        reply = api.post("/tasks/summarize/runs", body)
        assert reply.status == 202, reply.text
        run = api.get(f"/runs/{reply.json['run_id']}").json
        assert (run["queue"], run["concurrency_key"], run["priority"]) == ("llm", "user:9", 3)
        created = datetime.fromisoformat(run["created_at"])
        assert datetime.fromisoformat(run["start_by"]) - created == timedelta(seconds=60)
        for bad in ({"priority": 500}, {"concurrency_key": "a b"}, {"ttl_seconds": 0}):
            refused = api.post("/tasks/summarize/runs", {"payload": 1, **bad})
            assert refused.status == 400, (bad, refused.text)
            assert refused.json["error"]["code"]
        assert len(env.client.list().runs) == 1
        no_ttl = api.post("/tasks/summarize/runs", {"payload": 2}).json["run_id"]
        assert api.get(f"/runs/{no_ttl}").json["start_by"] is None


def test_the_client_reads_a_queues_slots_and_waiting_runs_per_key() -> None:
    registry = TaskRegistry()

    @task(id="hold", registry=registry, queue=Queue("one", concurrency=1, release_on_wait=False))
    def hold(ctx: Context, payload: Any) -> Any:
        return ctx.wait_for_event("go")

    with TestEnvironment(registry=registry) as env:
        for _ in range(3):
            env.trigger("hold", 1, concurrency_key="acme")
        env.trigger("hold", 1, concurrency_key="bolt")
        env.run_until_idle()
        usage = {key.key: (key.running, key.waiting) for key in env.client.queue_usage("one")}
        # each key's first run holds its one slot while it waits for "go"
        assert usage == {"acme": (1, 2), "bolt": (1, 0)}
