"""The public surface: a task's handle (what `@task` returns) as a child task, typed for the
type checker and revived into its result type at run time; async tasks share the
operations (their compensations and callback submissions run, awaited)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import durable
from durable import AsyncContext, Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.testing import TestEnvironment


class Quote(BaseModel):
    sku: str
    cents: int


def test_invoke_and_map_by_handle_revive_the_childs_result_type(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    seen: list[tuple[str, str]] = []

    @task(id="price", registry=registry)
    def price(ctx: Context, sku: str) -> Quote:
        return Quote(sku=sku, cents=100 * len(sku))

    @task(id="basket", registry=registry)
    def basket(ctx: Context, payload: None) -> dict[str, Any]:
        one = ctx.invoke(price, "abc")
        many = ctx.map(price, ["a", "bb"])
        by_id = ctx.invoke("price", "abcd")
        seen.append((type(one).__name__, type(by_id).__name__))
        seen.extend((type(item).__name__, item.sku) for item in many)
        return {"one": one.cents, "many": [item.cents for item in many], "raw": by_id}

    run = env.trigger("basket")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == {"one": 300, "many": [100, 200], "raw": {"sku": "abcd", "cents": 400}}
    # The last (completing) replay saw a model by handle, JSON values by id.
    assert seen[-3:] == [("Quote", "dict"), ("Quote", "a"), ("Quote", "bb")]


def test_a_client_trigger_by_handle_gives_the_result_as_the_tasks_type(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="quote", registry=registry)
    def quote(ctx: Context, sku: str) -> Quote:
        return Quote(sku=sku, cents=7)

    handle = env.client.trigger(quote, "abc")
    env.run_until_complete(handle.run_id)

    assert env.client.result(handle) == Quote(sku="abc", cents=7)
    assert env.client.result(handle.run_id) == {"sku": "abc", "cents": 7}


def test_an_async_tasks_compensations_run_when_it_fails_for_good(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    undone: list[str] = []

    async def undo(reference: str) -> None:
        undone.append(reference)

    @task(id="async-trip", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def trip(ctx: AsyncContext, payload: None) -> None:
        await ctx.step("book-flight", lambda: "FL-1", compensate=undo)
        await ctx.step("book-hotel", lambda: "HO-2", compensate=undo)
        raise LookupError("no cars left")

    run = env.trigger("async-trip")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert undone == ["HO-2", "FL-1"]
    names = [e.name for e in env.history(run.run_id) if e.kind == "step_completed"]
    assert names[-2:] == ["compensate:book-hotel", "compensate:book-flight"]


def test_an_async_tasks_callback_submission_runs_as_a_step(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    submitted: list[str] = []

    async def submit(token: str) -> None:
        submitted.append(token)

    @task(id="async-approval", registry=registry)
    async def approval(ctx: AsyncContext, payload: None) -> Any:
        return await ctx.wait_for_callback("approve", submit)

    run = env.trigger("async-approval")
    env.run_until_idle()
    assert len(submitted) == 1
    env.complete_callback(submitted[0], data={"ok": True})
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == {"ok": True}
    assert len(submitted) == 1  # replayed, not submitted twice
    kinds = [(e.kind, e.name) for e in env.history(run.run_id)]
    assert ("step_completed", "submit:approve") in kinds


def test_the_type_checker_checks_a_child_tasks_payload_and_result(tmp_path: Path) -> None:
    module = tmp_path / "typed_tasks.py"
    module.write_text(
        textwrap.dedent(
            """
            from durable import Client, Context, task

            @task(id="double")
            def double(ctx: Context, value: int) -> int:
                return value * 2

            @task(id="caller")
            def caller(ctx: Context, payload: None) -> str:
                good: int = ctx.invoke(double, 21)
                ctx.invoke(double, "not a number")
                wrong: str = ctx.invoke(double, 2)
                return str(good) + wrong

            def start(client: Client) -> int:
                client.trigger(double, "not a number")
                handle = client.trigger(double, 4)
                as_text: str = client.result(handle)
                return client.result(handle) + len(as_text)
            """
        )
    )
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    lines = sorted(int(line.split(":")[1]) for line in errors)
    # The bad payloads, and the results taken as str, by ctx.invoke and by Client.trigger.
    assert lines == [11, 12, 16, 18], checked.stdout


def test_the_package_exports_what_users_write_and_catch_and_nothing_internal() -> None:
    exported = set(durable.__all__)
    for name in (
        "AsyncContext",
        "ChildRunFailedError",
        "BatchFailedError",
        "CallbackFailedError",
        "StepTimeoutError",
        "WaitTimeoutError",
        "RunCancelledError",
    ):
        assert name in exported
    assert "ConflictError" not in exported
    errors = [
        getattr(durable, name)
        for name in exported
        if isinstance(getattr(durable, name), type)
        and issubclass(getattr(durable, name), BaseException)
    ]
    names = {error.__name__ for error in errors}
    assert all(name.endswith("Error") for name in names), sorted(names)
