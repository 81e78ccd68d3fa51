"""Reference workflows for the fault-injection suite: every primitive, side effects counted.

Each workflow records its side effects in an `Effects` log with the number of AWS calls
made so far, so a test can tell a step that ran twice because its own invocation died
between the side effect and its checkpoint (allowed: at-least-once) from one that ran again
after its checkpoint was written (never allowed).

    ref-steps     steps, a step retry, a task retry, a sleep over 15 minutes, ctx.now
    ref-waits     wait_for_event with a timeout, a callback handed out by a step
    ref-children  ctx.invoke, ctx.trigger, ctx.map over three items (two at a time)
    ref-saga      a step with a compensation, a step that fails for good: compensated
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from durable import Context, NonRetryableError, RetryPolicy, TaskRegistry, task
from durable.errors import CallbackAlreadyCompletedError
from durable.faults import Faults
from durable.records import RunStatus

from .conftest import Production

STEP_RETRY = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=2))
TASK_RETRY = RetryPolicy(max_attempts=3, min_delay=timedelta(seconds=5))


@dataclass
class Effects:
    """Side effects of steps, in the order they happened."""

    faults: Faults | None = None
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (run, step, AWS calls)

    def record(self, ctx: Context, name: str) -> int:
        """Record that step `name` of this run did its side effect; how many times it has."""
        calls = self.faults.calls if self.faults is not None else 0
        self.log.append((ctx.run.id, name, calls))
        return sum(1 for run_id, step, _ in self.log if (run_id, step) == (ctx.run.id, name))

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((run_id, step) for run_id, step, _ in self.log)

    def by_task_step(self, task_of: Callable[[str], str]) -> Counter[tuple[str, str]]:
        return Counter((task_of(run_id), step) for run_id, step, _ in self.log)


def register(registry: TaskRegistry, effects: Effects) -> None:
    """The reference workflows and their children, into `registry`."""

    def effect(ctx: Context, name: str, value: Any) -> Callable[[], Any]:
        def run() -> Any:
            effects.record(ctx, name)
            return value

        return run

    @task(id="ref-steps", registry=registry, retry=TASK_RETRY)
    def ref_steps(ctx: Context, payload: dict[str, int]) -> dict[str, Any]:
        reserved = ctx.step("reserve", effect(ctx, "reserve", payload["n"] + 1))

        def flaky() -> int:
            if effects.record(ctx, "flaky") == 1:
                raise ConnectionError("the provider timed out")  # its first attempt fails
            return reserved * 10

        charged = ctx.step("flaky", flaky, retry=STEP_RETRY)
        when = ctx.now()
        ctx.sleep("cool-off", timedelta(minutes=20))  # over SQS's 15-minute delay

        def settle() -> str:
            if effects.record(ctx, "settle") == 1:
                raise RuntimeError("fails the first task attempt")  # no step retry: task retry
            return "settled"

        settled = ctx.step("settle", settle)
        return {"reserved": reserved, "charged": charged, "settled": settled, "at": str(when)}

    @task(id="ref-waits", registry=registry)
    def ref_waits(ctx: Context, payload: None) -> dict[str, Any]:
        approval = ctx.wait_for_event("approval", timeout=timedelta(days=1))

        def hand_out(token: str) -> None:
            effects.record(ctx, f"hand-out:{token}")

        review = ctx.wait_for_callback("review", submit=hand_out, timeout=timedelta(days=1))
        return {"approval": approval, "review": review}

    @task(id="ref-child", registry=registry)
    def ref_child(ctx: Context, payload: int) -> int:
        return int(ctx.step("double", effect(ctx, "double", payload * 2)))

    @task(id="ref-item", registry=registry)
    def ref_item(ctx: Context, payload: int) -> int:
        return int(ctx.step("square", effect(ctx, "square", payload * payload)))

    @task(id="ref-notify", registry=registry)
    def ref_notify(ctx: Context, payload: str) -> None:
        ctx.step("notify", effect(ctx, "notify", payload))

    @task(id="ref-children", registry=registry)
    def ref_children(ctx: Context, payload: None) -> dict[str, Any]:
        doubled = ctx.invoke("ref-child", 21)
        ctx.trigger("ref-notify", "started")
        squares = ctx.map("ref-item", [1, 2, 3], max_concurrency=2)
        return {"doubled": doubled, "squares": squares}

    @task(id="ref-saga", registry=registry)
    def ref_saga(ctx: Context, payload: None) -> None:
        ctx.step(
            "book",
            effect(ctx, "book", "bk_1"),
            compensate=lambda booking: effects.record(ctx, f"cancel:{booking}"),
        )

        def pay() -> None:
            effects.record(ctx, "pay")
            raise NonRetryableError("card declined")

        ctx.step("pay", pay)


REFERENCE_TASKS = ["ref-steps", "ref-waits", "ref-children", "ref-saga"]
PAYLOADS: dict[str, Any] = {"ref-steps": {"n": 4}}


def outside_world(effects: Effects, run_id: str) -> Callable[[Production], None]:
    """What the world outside does for ref-waits: approve, then complete the callback.

    It acts through the API like any caller (retrying what fails); a callback completion
    that meets an already completed callback was delivered by an earlier try.
    """
    sent: set[str] = set()

    def act(production: Production) -> None:
        env = production.env
        info = env.get(run_id)
        if info.status is not RunStatus.WAITING:
            return
        if info.waiting_for == "approval" and "approval" not in sent:
            # with an event id: a send retried after a failure is stored once
            production.call(
                lambda: env.send_event(run_id, "approval", {"by": "ada"}, event_id="approval-1")
            )
            sent.add("approval")
        tokens = [
            step.split(":", 1)[1] for rid, step, _ in effects.log if rid == run_id and ":" in step
        ]
        for token in tokens:
            if token in sent:
                continue

            def complete(token: str = token) -> None:
                with contextlib.suppress(CallbackAlreadyCompletedError):
                    env.complete_callback(token, {"ok": True})

            production.call(complete)
            sent.add(token)

    return act
