"""The timeline of real runs (the test kit, memory store): every kind of bar the run page draws."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.errors import WaitTimeoutError
from durable.testing import TestEnvironment


def _at(text: str | None) -> datetime:
    assert text is not None
    return datetime.fromisoformat(text)


def _ops(timeline: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [op for op in timeline["operations"] if op["kind"] == kind]


def test_two_failed_step_attempts_then_success_give_three_bars_and_two_labelled_gaps(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls = {"n": 0}

    def charge() -> str:
        calls["n"] += 1
        env.clock.advance(timedelta(seconds=1))  # each attempt takes a second
        if calls["n"] < 3:
            raise ConnectionError(f"card network down ({calls['n']})")
        return "charged"

    policy = RetryPolicy(max_attempts=5, factor=2.0, min_delay=timedelta(seconds=2), jitter=0)

    @task(id="charge-order", registry=registry)
    def charge_order(ctx: Context, payload: None) -> str:
        return ctx.step("charge", charge, retry=policy)

    run = env.trigger("charge-order")
    assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
    timeline = env.client.timeline(run.run_id)

    assert timeline["live"] is False and timeline["waiting"] is None
    (step,) = _ops(timeline, "step")
    assert (step["id"], step["name"], step["status"], step["ended_by"]) == (
        "1.0",
        "charge",
        "completed",
        "completed",
    )
    assert step["value"] == "charged"
    bars = step["attempts"]
    assert [(bar["attempt"], bar["outcome"]) for bar in bars] == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    for bar in bars:  # each bar spans the attempt: it started a second before it ended
        assert _at(bar["ended_at"]) - _at(bar["started_at"]) == timedelta(seconds=1)
    assert bars[0]["error"]["type"] == "ConnectionError"
    assert "card network down (1)" in bars[0]["error"]["message"]
    assert bars[0]["error"]["traceback"]
    gaps = step["gaps"]
    assert [gap["after_attempt"] for gap in gaps] == [1, 2]
    assert [gap["label"] for gap in gaps] == ["backoff 2.0 s", "backoff 4.0 s"]
    for gap, failed, following in zip(gaps, bars, bars[1:], strict=False):
        assert gap["from"] == failed["ended_at"]
        assert gap["until"] == following["started_at"]
        assert _at(gap["until"]) >= _at(failed["retry_at"])
    assert len(step["seqs"]) == 3
    assert [band["outcome"] for band in timeline["attempts"]] == ["completed"]


def test_a_sleeping_run_says_what_it_waits_for_and_the_sleep_ends_by_timer(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="cool-off", registry=registry)
    def cool_off(ctx: Context, payload: None) -> str:
        ctx.sleep("cool-off", timedelta(minutes=5))
        return "done"

    run = env.trigger("cool-off")
    env.run_until_idle()
    timeline = env.client.timeline(run.run_id)
    assert timeline["live"] is True
    assert timeline["waiting"]["for"] == "sleep:cool-off"
    (sleep,) = _ops(timeline, "sleep")
    assert sleep["status"] == "waiting" and sleep["ended_at"] is None
    assert timeline["waiting"]["until"] == sleep["wake_at"]
    assert "until" in timeline["waiting"]["description"]

    env.advance(timedelta(minutes=5))
    timeline = env.client.timeline(run.run_id)
    (sleep,) = _ops(timeline, "sleep")
    assert (sleep["status"], sleep["ended_by"]) == ("completed", "timer")
    assert _at(sleep["ended_at"]) - _at(sleep["started_at"]) == timedelta(minutes=5)
    assert timeline["waiting"] is None and timeline["status"] == "COMPLETED"


def test_an_event_wait_ended_by_its_event_and_one_ended_by_its_timeout(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="approvals", registry=registry)
    def approvals(ctx: Context, payload: None) -> Any:
        first = ctx.wait_for_event("approval", timeout=timedelta(hours=1))
        try:
            ctx.wait_for_event("second-approval", timeout=timedelta(minutes=10))
        except WaitTimeoutError:
            return {"first": first, "second": None}
        return {"first": first}

    run = env.trigger("approvals")
    env.run_until_idle()
    timeline = env.client.timeline(run.run_id)
    assert timeline["waiting"]["for"] == "event:approval"
    assert 'event "approval"' in timeline["waiting"]["description"]
    assert timeline["waiting"]["until"] is not None

    env.advance(timedelta(minutes=3))
    env.send_event(run.run_id, "approval", {"by": "ada"})
    env.run_until_idle()
    env.advance(timedelta(minutes=10))
    assert env.get(run.run_id).status is RunStatus.COMPLETED

    first, second = _ops(env.client.timeline(run.run_id), "wait_for_event")
    assert (first["ended_by"], first["status"], first["value"]) == (
        "event",
        "completed",
        {"by": "ada"},
    )
    assert _at(first["ended_at"]) - _at(first["started_at"]) == timedelta(minutes=3)
    assert (second["ended_by"], second["status"]) == ("timeout", "failed")
    assert _at(second["ended_at"]) - _at(second["started_at"]) == timedelta(minutes=10)
    assert second["wake_at"] == second["ended_at"]


def test_a_callback_bar_spans_create_to_completion_with_its_token_redacted(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    tokens: list[str] = []

    @task(id="with-callback", registry=registry)
    def with_callback(ctx: Context, payload: None) -> Any:
        token = ctx.create_callback("payment", timeout=timedelta(hours=1))
        ctx.step("submit", lambda: tokens.append(token))
        return ctx.wait_for_callback("payment", token=token)

    run = env.trigger("with-callback")
    env.run_until_idle()
    timeline = env.client.timeline(run.run_id)
    assert timeline["waiting"]["for"].startswith("callback:")
    assert tokens[0] not in str(timeline)
    (callback,) = _ops(timeline, "callback")
    assert callback["status"] == "waiting" and callback["token"] == tokens[0][:6] + "…"

    env.advance(timedelta(seconds=30))
    env.complete_callback(tokens[0], {"paid": True})
    env.run_until_complete(run.run_id)
    timeline = env.client.timeline(run.run_id)
    (callback,) = _ops(timeline, "callback")
    assert (callback["ended_by"], callback["value"]) == ("callback", {"paid": True})
    assert _at(callback["ended_at"]) - _at(callback["started_at"]) == timedelta(seconds=30)
    assert len(callback["seqs"]) == 2
    assert tokens[0] not in str(timeline)


def test_a_child_invoke_and_a_map_batch_name_their_child_runs(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="double", registry=registry)
    def double(ctx: Context, payload: int) -> int:
        return payload * 2

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> Any:
        one = ctx.invoke("double", 21)
        many = ctx.map("double", [1, 2, 3], max_concurrency=2)
        return [one, many]

    run = env.trigger("parent")
    assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
    timeline = env.client.timeline(run.run_id)
    (invoke,) = _ops(timeline, "invoke")
    assert invoke["value"] == 42 and invoke["ended_by"] == "completed"
    assert env.get(invoke["child_run_id"]).parent_run_id == run.run_id
    (batch,) = _ops(timeline, "batch")
    assert batch["batch"]["total"] == 3
    assert (batch["batch"]["completed"], batch["batch"]["failed"]) == (3, 0)
    children = batch["batch"]["child_run_ids"]
    assert len(children) == 3
    assert [env.get(child).result for child in children] == [2, 4, 6]


def test_a_compensation_is_its_own_bar_and_a_task_retry_a_second_band(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    undone: list[str] = []

    def fail() -> None:
        raise RuntimeError("out of stock")

    @task(
        id="saga",
        registry=registry,
        retry=RetryPolicy(max_attempts=2, min_delay=timedelta(seconds=10), jitter=0),
    )
    def saga(ctx: Context, payload: None) -> None:
        ctx.step("reserve", lambda: "r-1", compensate=undone.append)
        ctx.step("ship", fail)

    run = env.trigger("saga")
    assert env.run_until_complete(run.run_id).status is RunStatus.FAILED
    timeline = env.client.timeline(run.run_id)

    first, second = timeline["attempts"]
    assert (first["outcome"], second["outcome"]) == ("failed", "failed")
    assert first["error"]["type"] == "RuntimeError"
    assert _at(first["retry_at"]) - _at(first["ended_at"]) == timedelta(seconds=10)
    assert second["started_at"] == first["retry_at"]
    assert second["ended_at"] == timeline["finished_at"]
    # A task retry resumes at its failure point: "reserve" replays, "ship" runs again.
    steps = _ops(timeline, "step")
    assert [(op["id"], op["name"], op["status"]) for op in steps] == [
        ("1.0", "reserve", "completed"),
        ("1.1", "ship", "failed"),
        ("2.1", "ship", "failed"),
    ]
    (compensation,) = _ops(timeline, "compensation")
    assert compensation["name"] == "compensate:reserve"
    assert compensation["task_attempt"] == 2 and compensation["status"] == "completed"
    assert undone == ["r-1"]


def test_an_async_task_and_the_moto_store_keep_each_attempts_start() -> None:
    registry = TaskRegistry()
    calls = {"n": 0}
    policy = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=2), jitter=0)

    with TestEnvironment("moto", registry=registry) as env:

        async def call() -> str:
            calls["n"] += 1
            env.clock.advance(timedelta(milliseconds=500))
            if calls["n"] == 1:
                raise ConnectionError("down")
            return "up"

        @task(id="async-flaky", registry=registry)
        async def async_flaky(ctx: Any, payload: None) -> str:
            return str(await ctx.step("call", call, retry=policy))

        run = env.trigger("async-flaky")
        assert env.run_until_complete(run.run_id).status is RunStatus.COMPLETED
        history = env.history(run.run_id)
        assert [
            (entry.kind, entry.at - entry.started_at) for entry in history if entry.started_at
        ] == [
            ("step_failed", timedelta(milliseconds=500)),
            ("step_completed", timedelta(milliseconds=500)),
        ]
        (step,) = env.client.timeline(run.run_id)["operations"]
        assert [gap["label"] for gap in step["gaps"]] == ["backoff 2.0 s"]
        assert step["gaps"][0]["until"] == step["attempts"][1]["started_at"]
