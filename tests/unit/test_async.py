"""`async def` tasks and steps: awaited operations, concurrent gathered steps with stable
identities, retries and replays, as for plain tasks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from durable import RetryPolicy, RunStatus, TaskRegistry, step, task
from durable.context import AsyncContext
from durable.testing import TestEnvironment


def test_gathered_steps_run_concurrently_and_keep_their_identities(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    finished: list[str] = []
    calls: list[str] = []

    async def fetch(name: str, delay: float) -> str:
        calls.append(name)
        await asyncio.sleep(delay)  # real concurrency: the slowest is called first
        finished.append(name)
        return name.upper()

    @task(id="gather", registry=registry)
    async def gather(ctx: AsyncContext, payload: None) -> list[str]:
        results = await asyncio.gather(
            ctx.step("a", fetch, "a", 0.03),
            ctx.step("b", fetch, "b", 0.01),
            ctx.step("c", fetch, "c", 0.0),
        )
        await ctx.sleep("nap", timedelta(hours=1))
        return list(results)

    run = env.trigger("gather")
    env.run_until_idle()
    assert finished == ["c", "b", "a"]  # they overlapped
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == ["A", "B", "C"]
    assert calls == ["a", "b", "c"]  # replayed, not run again
    completed = [
        (e.name, e.position) for e in env.history(run.run_id) if e.kind == "step_completed"
    ]
    assert sorted(completed, key=lambda pair: pair[1]) == [("a", 0), ("b", 1), ("c", 2)]
    assert [name for name, _ in completed] == ["c", "b", "a"]  # logged as they finished


def test_async_steps_retry_and_decorated_steps_checkpoint(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    attempts: list[int] = []

    @step(retry=RetryPolicy(max_attempts=3))
    async def flaky_lookup(key: str) -> dict[str, Any]:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError("not yet")
        return {"key": key, "tries": len(attempts)}

    @task(id="async-retry", registry=registry)
    async def async_retry(ctx: AsyncContext, payload: str) -> dict[str, Any]:
        found = await flaky_lookup(payload)
        event = await ctx.wait_for_event("go", timeout=timedelta(minutes=5))
        return {**found, "event": event}

    run = env.trigger("async-retry", "k-1")
    env.run_until_complete(run.run_id)
    env.send_event(run.run_id, "go", 1)
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == {"key": "k-1", "tries": 3, "event": 1}
    assert attempts == [1, 2, 3]


def test_a_suspension_inside_a_gather_suspends_the_run(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    ran: list[str] = []

    async def quick(name: str) -> str:
        ran.append(name)
        return name

    @task(id="gather-sleep", registry=registry)
    async def gather_sleep(ctx: AsyncContext, payload: None) -> list[Any]:
        return list(
            await asyncio.gather(
                ctx.step("first", quick, "first"),
                ctx.sleep("wait", timedelta(minutes=10)),
                ctx.step("second", quick, "second"),
            )
        )

    run = env.trigger("gather-sleep")
    env.run_until_idle()
    assert env.get(run.run_id).status == RunStatus.WAITING
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED
    assert info.result == ["first", None, "second"]
    assert ran.count("first") == 1
