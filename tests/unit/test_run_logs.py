"""Logs per run in the test kit: what `ctx.logger` and the task's standard logging write
during a run is read back per run (`env.logs`, `Client.logs`, `GET /runs/{id}/logs`),
stamped with the run, quiet on replay, page by page with a cursor."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from durable import AsyncContext, Context, RetryPolicy, TaskRegistry, task
from durable.api import handle
from durable.errors import RunNotFoundError
from durable.local.gateway import build_event
from durable.logs import library_logger
from durable.runlogs import InvalidLogCursorError, LogLine
from durable.runlogs.base import Position
from durable.testing import TestEnvironment

task_log = logging.getLogger("tests.run_logs.task")


def messages(lines: list[LogLine]) -> list[str]:
    return [line.message for line in lines]


def test_both_kinds_of_line_come_back_stamped_with_the_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    def charge(ctx: Context, amount: int) -> str:
        task_log.info("charging %d", amount, extra={"amount": amount})
        ctx.logger.info("charged", payment="ch_1")
        return "ch_1"

    @task(id="pay", registry=registry)
    def pay(ctx: Context, payload: None) -> str:
        ctx.logger.info("starting", order="o-1")
        task_log.warning("stdlib outside a step")
        return ctx.step("charge", charge, ctx, 5)

    run = env.trigger("pay")
    env.run_until_complete(run.run_id)
    lines = env.logs(run.run_id).lines

    assert [(line.message, line.logger, line.step, line.level) for line in lines] == [
        ("starting", "durable", None, "INFO"),
        ("stdlib outside a step", "tests.run_logs.task", None, "WARNING"),
        ("charging 5", "tests.run_logs.task", "charge", "INFO"),
        ("charged", "durable", "charge", "INFO"),
    ]
    assert all(line.attempt == 1 for line in lines)
    assert lines[0].data == {"order": "o-1"}
    assert lines[2].data == {"amount": 5}
    assert lines[3].data == {"payment": "ch_1"}
    assert lines[1].data is None
    assert lines[0].at == env.now()  # the virtual clock's instant


def test_replayed_code_logs_nothing_twice_and_attempts_are_told_apart(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    tries: list[int] = []

    def flaky() -> str:
        tries.append(1)
        task_log.info("try %d", len(tries))
        if len(tries) == 1:
            raise RuntimeError("first try fails")
        return "ok"

    @task(id="napper", registry=registry, retry=RetryPolicy(max_attempts=2))
    def napper(ctx: Context, payload: None) -> str:
        ctx.logger.info("before the nap")
        task_log.info("stdlib before the nap")
        ctx.sleep("nap", timedelta(hours=1))
        task_log.info("after the nap")
        return ctx.step("flaky", flaky)

    run = env.trigger("napper")
    env.run_until_complete(run.run_id)
    lines = env.logs(run.run_id).lines

    # attempt 1: before the nap, (sleep), after the nap, the step fails. Attempt 2 replays
    # the nap silently and runs the step again: only what runs for real logs.
    assert [(line.message, line.attempt) for line in lines] == [
        ("before the nap", 1),
        ("stdlib before the nap", 1),
        ("after the nap", 1),
        ("try 1", 1),
        ("try 2", 2),
    ]


def test_a_child_runs_lines_are_not_its_parents(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="child", registry=registry)
    def child(ctx: Context, payload: int) -> int:
        task_log.info("child %d", payload)
        return payload

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> int:
        task_log.info("parent starts")
        total = sum(ctx.map("child", [1, 2]))
        task_log.info("parent ends")
        return total

    run = env.trigger("parent")
    env.run_until_complete(run.run_id)
    children = [view for view in env.list(limit=10).runs if view.parent_run_id == run.run_id]

    assert messages(env.logs(run.run_id).lines) == ["parent starts", "parent ends"]
    assert len(children) == 2
    for view in children:
        assert view.run_id.startswith(run.run_id)
        assert messages(env.logs(view.run_id).lines) == [f"child {view.payload}"]


def test_pages_follow_each_other_across_lines_of_one_instant(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="chatty", registry=registry)
    def chatty(ctx: Context, payload: int) -> None:
        for number in range(payload):
            task_log.info("line %d", number)

    run = env.trigger("chatty", 25)
    env.run_until_complete(run.run_id)

    seen: list[str] = []
    mores: list[bool] = []
    cursor = None
    for _ in range(10):
        page = env.logs(run.run_id, cursor, limit=7)
        seen += messages(page.lines)
        mores.append(page.more)
        cursor = page.next_cursor
        if not page.more:
            break
    # every line once, in order, though all 25 share one millisecond
    assert seen == [f"line {number}" for number in range(25)]
    assert mores == [True, True, True, False]  # 7 + 7 + 7 + 4
    assert len({line.at for line in env.logs(run.run_id, limit=25).lines}) == 1


def test_a_follower_gets_only_the_lines_logged_since(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="gate", registry=registry)
    def gate(ctx: Context, payload: None) -> None:
        task_log.info("waiting")
        ctx.wait_for_event("go")
        task_log.info("going")

    run = env.trigger("gate")
    env.run_until_idle()
    first = env.logs(run.run_id)
    idle = env.logs(run.run_id, first.next_cursor)
    env.send_event(run.run_id, "go")
    env.run_until_idle()
    then = env.logs(run.run_id, idle.next_cursor)

    assert messages(first.lines) == ["waiting"]
    assert idle.lines == [] and idle.next_cursor  # always a cursor, even with nothing new
    assert messages(then.lines) == ["going"]
    assert env.logs(run.run_id, then.next_cursor).lines == []


def test_lines_outside_runs_are_not_anyones(registry: TaskRegistry, env: TestEnvironment) -> None:
    @task(id="quiet", registry=registry)
    def quiet(ctx: Context, payload: None) -> None:
        return None

    task_log.warning("logged by the test, in no run")
    run = env.trigger("quiet")
    env.run_until_complete(run.run_id)

    assert env.logs(run.run_id).lines == []
    assert len(env.log_source) == 0


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        "e30",  # {}
        Position(5, frozenset({"abc"})).encode(),  # a hash of the wrong length
        "eyJ2IjoxLCJ0IjotMSwicyI6W119",  # t = -1
        "x" * 20000,
    ],
)
def test_a_cursor_that_is_not_ours_is_refused(
    registry: TaskRegistry, env: TestEnvironment, cursor: str
) -> None:
    @task(id="any", registry=registry)
    def any_task(ctx: Context, payload: None) -> None:
        return None

    run = env.trigger("any")
    with pytest.raises(InvalidLogCursorError):
        env.logs(run.run_id, cursor)


def test_an_unknown_run_has_no_logs(env: TestEnvironment) -> None:
    with pytest.raises(RunNotFoundError):
        env.logs("run_0123")


# -- the HTTP API --------------------------------------------------------------------------


def api_get(env: TestEnvironment, target: str) -> tuple[int, Any]:
    event = build_event(method="GET", target=target, headers=[], body=b"")
    response = handle(event, None, env.client)
    return int(response["statusCode"]), json.loads(response["body"])


def test_the_api_answers_the_contracts_shape(registry: TaskRegistry, env: TestEnvironment) -> None:
    @task(id="hello", registry=registry)
    def hello(ctx: Context, payload: None) -> None:
        ctx.logger.info("hello", who="ada")
        task_log.info("bye")

    run = env.trigger("hello")
    env.run_until_complete(run.run_id)

    status, body = api_get(env, f"/runs/{run.run_id}/logs?limit=1")
    assert status == 200
    assert set(body) == {"run_id", "logs", "next_cursor", "more"}
    assert body["more"] is True  # a second line is waiting
    assert body["run_id"] == run.run_id
    assert body["logs"] == [
        {
            "at": env.now().isoformat(),
            "level": "INFO",
            "message": "hello",
            "step": None,
            "attempt": 1,
            "logger": "durable",
            "data": {"who": "ada"},
        }
    ]
    status, rest = api_get(env, f"/runs/{run.run_id}/logs?cursor={body['next_cursor']}")
    assert status == 200
    assert [line["message"] for line in rest["logs"]] == ["bye"]
    assert rest["more"] is False
    # an empty cursor is the first page
    status, again = api_get(env, f"/runs/{run.run_id}/logs?cursor=")
    assert status == 200 and len(again["logs"]) == 2


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("cursor=garbage", 400, "invalid_cursor"),
        ("cursor=" + "x" * 20000, 400, "invalid_request"),
        ("limit=0", 400, "invalid_request"),
        ("limit=1001", 400, "invalid_request"),
        ("limit=ten", 400, "invalid_request"),
    ],
)
def test_bad_queries_are_4xx_with_a_json_body(
    registry: TaskRegistry, env: TestEnvironment, query: str, status: int, code: str
) -> None:
    @task(id="any", registry=registry)
    def any_task(ctx: Context, payload: None) -> None:
        return None

    run = env.trigger("any")
    answered, body = api_get(env, f"/runs/{run.run_id}/logs?{query}")
    assert (answered, body["error"]["code"]) == (status, code)


def test_an_unknown_run_is_404(env: TestEnvironment) -> None:
    status, body = api_get(env, "/runs/run_nope/logs")
    assert (status, body["error"]["code"]) == (404, "run_not_found")
    status, body = api_get(env, "/runs/" + "r" * 600 + "/logs")
    assert status == 400


# -- what the worker prints ----------------------------------------------------------------


def printed_records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_the_tasks_standard_logging_prints_the_same_json_with_the_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="printer", registry=registry)
    def printer(ctx: Context, payload: None) -> None:
        ctx.logger.info("from ctx.logger")
        ctx.step("work", lambda: task_log.info("from the standard logging"))

    # where the worker prints (stdout in Lambda, the console in `durable dev`)
    handler = library_logger().registered_handler
    assert isinstance(handler, logging.StreamHandler)
    printed = io.StringIO()
    stream = handler.setStream(printed)
    try:
        run = env.trigger("printer")
        env.run_until_complete(run.run_id)
    finally:
        handler.setStream(stream)
    records = {record["message"]: record for record in printed_records(printed.getvalue())}

    ours, theirs = records["from ctx.logger"], records["from the standard logging"]
    for record in (ours, theirs):  # Powertools' JSON, with the run's keys
        assert {"level", "location", "timestamp", "service"} <= set(record)
        assert (record["run_id"], record["task_id"], record["attempt"]) == (
            run.run_id,
            "printer",
            1,
        )
    assert theirs["step"] == "work" and theirs["logger"] == "tests.run_logs.task"
    assert "logger" not in ours


def test_async_tasks_gathered_steps_are_stamped_each_with_its_step(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    async def fetch(name: str) -> str:
        await asyncio.sleep(0)
        task_log.info("fetching %s", name)
        return name

    @task(id="gatherer", registry=registry)
    async def gatherer(ctx: AsyncContext, payload: None) -> list[str]:
        task_log.info("gathering")
        return list(await asyncio.gather(ctx.step("one", fetch, "a"), ctx.step("two", fetch, "b")))

    run = env.trigger("gatherer")
    env.run_until_complete(run.run_id)

    assert sorted((line.message, line.step) for line in env.logs(run.run_id).lines) == [
        ("fetching a", "one"),
        ("fetching b", "two"),
        ("gathering", None),
    ]


def test_the_roots_other_handlers_get_what_they_got_before(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    seen_level: list[int] = []

    @task(id="levels", registry=registry)
    def levels(ctx: Context, payload: None) -> None:
        seen_level.append(logging.getLogger().level)
        task_log.info("info in a run")
        task_log.warning("warning in a run")
        logging.getLogger("tests.run_logs.chatty").debug("debug in a run")

    root = logging.getLogger()
    kept, level = Kept(), root.level
    root.addHandler(kept)
    root.setLevel(logging.WARNING)  # as Lambda leaves it
    try:
        run = env.trigger("levels")
        env.run_until_complete(run.run_id)
        after = root.level
    finally:
        root.removeHandler(kept)
        root.setLevel(level)

    # INFO reached the run's logs (the root was at INFO during the attempt) ...
    assert seen_level == [logging.INFO]
    assert messages(env.logs(run.run_id).lines) == ["info in a run", "warning in a run"]
    # ... but the handler that was there got only what a WARNING root let through, and
    # the root is back at its level
    assert kept.messages == ["warning in a run"]
    assert after == logging.WARNING
    assert not kept.filters
