"""Tags, metadata, the tag and finish-time filters, and idempotency keys that expire: through
`TestEnvironment` (the client), the HTTP API and the CLI, on the memory backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.test_api import Api, assert_nothing_stored, make_registry, trigger

from durable import Context, RunStatus, TaskRegistry, task
from durable.cli import main
from durable.errors import IdempotencyConflictError, InvalidMetadataError, InvalidTagsError
from durable.testing import TestEnvironment


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=make_registry()) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


# -- tags and metadata at trigger --------------------------------------------------------


def test_tags_and_metadata_are_kept_and_a_tag_finds_its_runs(env: TestEnvironment) -> None:
    first = env.trigger("echo", 1, tags=["user:123", "env=prod", "user:123"], metadata={"a": "b"})
    env.trigger("echo", 2, tags=["user:456"])
    third = env.trigger("order", {"order_id": "o"}, tags=["user:123"])

    run = env.get(first.run_id)
    assert run.tags == ("user:123", "env=prod")  # deduplicated, order kept
    assert run.metadata == {"a": "b"}
    # Both made at one virtual instant: their ids' order within the millisecond is random.
    assert {r.run_id for r in env.list(tag="user:123").runs} == {third.run_id, first.run_id}
    assert [r.run_id for r in env.list(task_id="echo", tag="user:123").runs] == [first.run_id]
    assert env.list(tag="nobody").runs == []


@pytest.mark.parametrize(
    ("tags", "metadata", "error"),
    [
        (["a b"], None, InvalidTagsError),
        ([""], None, InvalidTagsError),
        (["x" * 65], None, InvalidTagsError),
        (["a#b"], None, InvalidTagsError),
        ([f"t{n}" for n in range(11)], None, InvalidTagsError),
        ("user:1", None, InvalidTagsError),
        (None, {"1st": "v"}, InvalidMetadataError),
        (None, {"k": "v" * 513}, InvalidMetadataError),
        (None, {f"k{n}": "v" for n in range(17)}, InvalidMetadataError),
        (None, {f"k{n}": "v" * 500 for n in range(9)}, InvalidMetadataError),
        (None, {"k": 1}, InvalidMetadataError),
    ],
)
def test_labels_outside_their_limits_store_nothing(
    env: TestEnvironment, tags: Any, metadata: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        env.trigger("echo", 1, tags=tags, metadata=metadata)
    assert_nothing_stored(env)


def test_ten_tags_and_sixteen_keys_are_accepted(env: TestEnvironment) -> None:
    tags = [f"t{n}" for n in range(10)]
    metadata = {f"k{n}": "v" * 200 for n in range(16)}
    run = env.get(env.trigger("echo", 1, tags=tags, metadata=metadata).run_id)
    assert run.tags == tuple(tags) and run.metadata == metadata


def test_the_api_takes_tags_and_metadata_and_lists_by_tag(api: Api, env: TestEnvironment) -> None:
    run_id = trigger(api, "echo", 1, tags=["team/payments"], metadata={"source": "webhook"})
    trigger(api, "echo", 2)

    run = api.get(f"/runs/{run_id}").json
    assert run["tags"] == ["team/payments"] and run["metadata"] == {"source": "webhook"}
    listing = api.get("/runs", query={"tag": "team/payments"}).json
    assert [summary["run_id"] for summary in listing["runs"]] == [run_id]
    assert listing["runs"][0]["tags"] == ["team/payments"]
    assert "metadata" not in listing["runs"][0]  # the run's own page shows it


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"tags": ["no spaces"]}, "invalid_request"),
        ({"tags": "user:1"}, "invalid_request"),
        ({"tags": [f"t{n}" for n in range(11)]}, "invalid_request"),
        ({"metadata": {"k": 1}}, "invalid_request"),
        ({"metadata": {"1st": "v"}}, "invalid_metadata"),
        ({"metadata": {"k": "v" * 513}}, "invalid_metadata"),
        ({"idempotency_key": "k", "idempotency_key_ttl": 0}, "invalid_request"),
        ({"idempotency_key": "k", "idempotency_key_ttl": "60"}, "invalid_request"),
    ],
)
def test_the_api_refuses_bad_labels_with_400(
    api: Api, env: TestEnvironment, fields: dict[str, Any], code: str
) -> None:
    reply = api.post("/tasks/echo/runs", {"payload": 1, **fields})
    assert reply.status == 400, reply.text
    assert reply.error_code == code
    assert_nothing_stored(env)


@pytest.mark.parametrize("tag", ["a#b", "", "x" * 65])
def test_a_bad_tag_filter_is_400(api: Api, tag: str) -> None:
    reply = api.get("/runs", query={"tag": tag})
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


def test_the_openapi_document_describes_the_labels_and_filters(api: Api) -> None:
    document = api.get("/openapi.json").json
    trigger_body = document["components"]["schemas"]["TriggerRequest"]["properties"]
    assert {"tags", "metadata", "idempotency_key_ttl"} <= set(trigger_body)
    parameters = {p["name"] for p in document["paths"]["/runs"]["get"]["parameters"]}
    assert {"tag", "finished_after", "finished_before"} <= parameters


# -- finished time range -----------------------------------------------------------------


def test_runs_finished_in_a_range(api: Api, env: TestEnvironment) -> None:
    start = env.now()
    done = []
    for n in range(3):
        run_id = trigger(api, "echo", n)
        env.run_until_complete(run_id)
        done.append(run_id)
        env.clock.advance(timedelta(hours=1))
    trigger(api, "approval")  # never finishes
    env.run_until_idle()

    def finished(**query: str) -> list[str]:
        reply = api.get("/runs", query=query)
        assert reply.status == 200, reply.text
        return [summary["run_id"] for summary in reply.json["runs"]]

    middle = (start + timedelta(minutes=30)).isoformat()
    end = (start + timedelta(minutes=90)).isoformat()
    assert finished(finished_after=middle) == [done[2], done[1]]
    assert finished(finished_before=middle) == [done[0]]
    assert finished(finished_after=middle, finished_before=end) == [done[1]]
    assert finished(finished_after=start.isoformat(), status="WAITING") == []
    assert len(finished()) == 4


# -- idempotency keys that expire --------------------------------------------------------


def test_a_key_holds_until_its_ttl_then_starts_a_new_run(api: Api, env: TestEnvironment) -> None:
    body = {"payload": 1, "idempotency_key": "k-1", "idempotency_key_ttl": 60}
    first = api.post("/tasks/echo/runs", body).json
    env.clock.advance(timedelta(seconds=59))
    assert api.post("/tasks/echo/runs", body).json == {**first, "created": False}
    conflict = api.post("/tasks/echo/runs", {**body, "payload": 2})
    assert conflict.status == 409 and conflict.error_code == "idempotency_conflict"

    env.clock.advance(timedelta(seconds=1))
    later = api.post("/tasks/echo/runs", {**body, "payload": 2})  # another payload: a new run
    assert later.status == 202 and later.json["created"] is True
    assert later.json["run_id"] != first["run_id"]
    assert env.get(first["run_id"]).payload == 1  # the old run is untouched
    assert env.get(later.json["run_id"]).idempotency_key == "k-1"


def test_the_default_ttl_is_a_day(env: TestEnvironment) -> None:
    first = env.trigger("echo", 1, idempotency_key="k")
    env.clock.advance(timedelta(hours=23, minutes=59))
    assert env.trigger("echo", 1, idempotency_key="k").run_id == first.run_id
    with pytest.raises(IdempotencyConflictError):
        env.trigger("echo", 2, idempotency_key="k")
    env.clock.advance(timedelta(minutes=1))
    assert env.trigger("echo", 1, idempotency_key="k").created is True


def test_a_child_run_key_never_expires() -> None:
    registry = TaskRegistry()

    @task(id="child", registry=registry)
    def child(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_event("go")

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> Any:
        return ctx.invoke("child", None)

    with TestEnvironment(registry=registry) as env:
        parent_run = env.trigger("parent")
        env.run_until_idle()
        (kid,) = [run for run in env.list().runs if run.parent_run_id == parent_run.run_id]
        stored = env.store.get_run(kid.run_id)
        assert stored is not None and stored.idempotency_key is not None
        assert stored.idempotency_expires_at is None
        # days later, a replay of the parent asks for its child again: the same one
        env.clock.advance(timedelta(days=3))
        again = env.client._starter().trigger(
            "child", None, stored.idempotency_key, parent_run_id=parent_run.run_id
        )
        assert (again.run_id, again.created) == (kid.run_id, False)


# -- the CLI -----------------------------------------------------------------------------


class EnvTransport:
    """The CLI's transport, answering from the API in this process."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        reply = self.api.call(method, path, body, query=query)
        return reply.status, reply.json


def test_the_cli_tags_a_run_and_lists_by_tag(
    api: Api, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr("durable.cli.runs.make_transport", lambda args: EnvTransport(api))
    trigger(api, "echo", 0)
    args = ["trigger", "echo", "--payload", "1", "--tag", "user:9", "--tag", "vip"]
    assert main([*args, "--meta", "source=cli", "--meta", "note=a=b"]) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    run = env.get(run_id)
    assert run.tags == ("user:9", "vip") and run.metadata == {"source": "cli", "note": "a=b"}

    assert main(["runs", "--tag", "vip", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)["runs"]] == [run_id]
    assert main(["runs"]) == 0
    table = capsys.readouterr().out
    assert "TAGS" in table and "user:9,vip" in table
    assert main(["show", run_id]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"] == {"source": "cli", "note": "a=b"}


def test_the_cli_refuses_a_meta_without_a_value(
    api: Api, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("durable.cli.runs.make_transport", lambda args: EnvTransport(api))
    assert main(["trigger", "echo", "--meta", "novalue"]) == 2
    assert_nothing_stored(env)


def test_the_cli_passes_the_ttl_and_the_finish_range(
    api: Api, env: TestEnvironment, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setattr("durable.cli.runs.make_transport", lambda args: EnvTransport(api))
    args = ["trigger", "echo", "--payload", "1", "--idempotency-key", "k"]
    assert main([*args, "--idempotency-ttl", "5"]) == 0
    first = json.loads(capsys.readouterr().out)["run_id"]
    env.run_until_complete(first)
    env.clock.advance(timedelta(seconds=5))
    assert main([*args, "--idempotency-ttl", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] is True

    since = (env.now() - timedelta(seconds=5)).isoformat()
    assert main(["runs", "--finished-since", since, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["runs"]
    assert [r["run_id"] for r in listed] == [first]
    assert listed[0]["status"] == RunStatus.COMPLETED
