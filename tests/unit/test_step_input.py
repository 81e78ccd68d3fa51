"""A fresh step attempt records its arguments (`Checkpoint.input`): JSON in the library's
rules up to 4 KB, a note otherwise, nothing for a step without arguments; the preview never
fails or changes a step, costs no blob, and replay never reads it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, field_serializer

from durable import AsyncContext, Context, RetryPolicy, TaskRegistry, step, task
from durable.operations.step_input import MAX_INPUT_PREVIEW, input_preview
from durable.records import CheckpointKind
from durable.replayer import ReplayStatus, replay_run
from durable.serialization import dumps
from durable.testing import TestEnvironment


class Order(BaseModel):
    order_id: str
    cents: int
    placed: datetime


@dataclass
class Address:
    city: str
    zip_code: str


class Exploding(BaseModel):
    secret: str

    @field_serializer("secret")
    def _refuse(self, value: str) -> str:
        raise RuntimeError("this field may not be serialized")


ORDER = Order(order_id="o-1", cents=2500, placed=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))


# -- the preview ------------------------------------------------------------------------


def test_args_and_kwargs_are_recorded_as_json() -> None:
    text = input_preview((1, "two", [3.5, None]), {"flag": True, "tags": ("a", "b")})

    assert text == '{"args":[1,"two",[3.5,null]],"kwargs":{"flag":true,"tags":["a","b"]}}'


def test_models_dataclasses_and_datetimes_follow_the_librarys_json_rules() -> None:
    text = input_preview((ORDER,), {"ship_to": Address("Venice", "30100")})

    assert text is not None
    assert json.loads(text) == {
        "args": [{"order_id": "o-1", "cents": 2500, "placed": "2030-01-02T03:04:05Z"}],
        "kwargs": {"ship_to": {"city": "Venice", "zip_code": "30100"}},
    }
    # the same text `dumps` gives a step's value
    assert text == dumps({"args": [ORDER], "kwargs": {"ship_to": Address("Venice", "30100")}})


def test_a_step_without_arguments_records_nothing() -> None:
    assert input_preview((), {}) is None


def test_the_bound_is_4_kb_of_utf8_text() -> None:
    frame = len('{"args":[""],"kwargs":{}}')
    at_bound = input_preview(("x" * (MAX_INPUT_PREVIEW - frame),), {})
    over_bound = input_preview(("x" * (MAX_INPUT_PREVIEW - frame + 1),), {})
    # "é" is 2 bytes in UTF-8: half as many characters reach the same bound
    accented = input_preview(("é" * ((MAX_INPUT_PREVIEW - frame) // 2 + 1),), {})

    assert MAX_INPUT_PREVIEW == 4096
    assert at_bound is not None
    assert len(at_bound.encode()) == MAX_INPUT_PREVIEW
    assert json.loads(at_bound)["args"] == ["x" * (MAX_INPUT_PREVIEW - frame)]
    assert over_bound == '{"omitted":"input is over 4 KB, the preview\'s bound"}'
    assert accented == over_bound


def test_a_large_argument_is_a_note_not_a_copy() -> None:
    rows = [{"row": n, "name": f"customer {n}"} for n in range(200_000)]  # ~6 MB as JSON

    text = input_preview((rows,), {"batch": 7})

    assert text is not None
    assert json.loads(text) == {"omitted": "input is over 4 KB, the preview's bound"}


def test_an_argument_that_is_not_json_is_named_in_a_note() -> None:
    class Connection:
        pass

    assert json.loads(input_preview((Connection(),), {}) or "") == {
        "omitted": "not JSON: Connection"
    }
    assert json.loads(input_preview((), {"when": {1, 2}, "lock": object()}) or "") == {
        "omitted": "not JSON: object"
    }
    assert json.loads(input_preview((float("nan"),), {}) or "") == {
        "omitted": "not JSON: ValueError while encoding"
    }


def test_an_encoding_that_raises_becomes_a_note() -> None:
    text = input_preview((Exploding(secret="s3cr3t"),), {})

    assert json.loads(text or "") == {"omitted": "not JSON: Exploding"}


def test_a_generator_argument_is_not_consumed() -> None:
    def numbers() -> Iterator[int]:
        yield from (1, 2, 3)

    given = numbers()
    text = input_preview((given,), {})

    assert json.loads(text or "") == {"omitted": "not JSON: generator"}
    assert list(given) == [1, 2, 3]


def test_secrets_are_redacted_wherever_they_appear() -> None:
    token = "AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    text = input_preview((token,), {"url": f"https://example.com/callbacks/{token}?x=1"}, [token])

    assert text is not None
    assert token not in text
    assert json.loads(text) == {
        "args": ["AbCdEf…"],
        "kwargs": {"url": "https://example.com/callbacks/AbCdEf…?x=1"},
    }


# -- in runs ----------------------------------------------------------------------------


def _ends(env: TestEnvironment, run_id: str) -> list[tuple[str, str, Any]]:
    return [
        (str(cp.kind), cp.name, json.loads(cp.input) if cp.input is not None else None)
        for cp in env.store.load_history(run_id)
        if cp.kind in (CheckpointKind.STEP_COMPLETED, CheckpointKind.STEP_FAILED)
    ]


def test_each_fresh_attempt_records_what_it_was_given(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls: list[list[str]] = []

    def charge(order: Order, items: list[str], *, currency: str) -> str:
        calls.append(list(items))
        items.append("mutated by the step")  # recorded before the body ran: not shown
        if len(calls) == 1:
            raise ConnectionError("provider down")
        return f"charged {order.cents} {currency}"

    @task(id="charge", registry=registry)
    def charging(ctx: Context, payload: None) -> str:
        ctx.step("no-args", lambda: None)
        return ctx.step(
            "charge", charge, ORDER, ["book"], currency="EUR", retry=RetryPolicy(max_attempts=2)
        )

    run = env.trigger("charge")
    info = env.run_until_complete(run.run_id)

    given = {
        "args": [
            {"order_id": "o-1", "cents": 2500, "placed": "2030-01-02T03:04:05Z"},
            ["book"],
        ],
        "kwargs": {"currency": "EUR"},
    }
    assert info.result == "charged 2500 EUR"
    assert _ends(env, run.run_id) == [
        ("step_completed", "no-args", None),
        ("step_failed", "charge", given),
        ("step_completed", "charge", given),
    ]
    history = [entry.to_dict() for entry in env.history(run.run_id)]
    assert [entry["input"] for entry in history if entry["name"] == "charge"] == [given, given]


def test_an_encoding_that_raises_leaves_the_step_running(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @step()
    def store_secret(value: Exploding) -> int:
        return len(value.secret)

    @task(id="secret", registry=registry)
    def secret(ctx: Context, payload: None) -> int:
        return store_secret(Exploding(secret="s3cr3t"))

    run = env.trigger("secret")
    info = env.run_until_complete(run.run_id)

    assert info.result == 6
    assert _ends(env, run.run_id) == [
        ("step_completed", "store_secret", {"omitted": "not JSON: Exploding"})
    ]


def test_a_large_argument_costs_no_blob(registry: TaskRegistry) -> None:
    big = "x" * 300_000

    @task(id="big-arg", registry=registry)
    def big_arg(ctx: Context, payload: None) -> int:
        return ctx.step("measure", len, big)

    with TestEnvironment(registry=registry, inline_limit=1024) as env:
        run = env.trigger("big-arg")
        info = env.run_until_complete(run.run_id)
        blobs = dict(env.blobs._blobs)  # type: ignore[attr-defined]

    assert info.result == 300_000
    assert blobs == {}
    assert _ends(env, run.run_id) == [
        ("step_completed", "measure", {"omitted": "input is over 4 KB, the preview's bound"})
    ]


def test_async_steps_and_compensations_record_their_inputs(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    async def book(city: str, nights: int) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"booking": f"{city}-{nights}"}

    async def cancel(booking: dict[str, Any]) -> None:
        await asyncio.sleep(0)

    async def fail() -> None:
        raise ValueError("no cars in Venice")

    @task(id="trip", registry=registry, retry=RetryPolicy(max_attempts=1))
    async def trip(ctx: AsyncContext, payload: None) -> None:
        await ctx.step("hotel", book, "Venice", nights=2, compensate=cancel)
        try:
            await ctx.step("car", fail)
        except Exception:
            await ctx.compensate()
            raise

    run = env.trigger("trip")
    env.run_until_complete(run.run_id)

    assert _ends(env, run.run_id) == [
        ("step_completed", "hotel", {"args": ["Venice"], "kwargs": {"nights": 2}}),
        ("step_failed", "car", None),
        (
            "step_completed",
            "compensate:hotel",
            {"args": [{"booking": "Venice-2"}], "kwargs": {}},
        ),
    ]


@pytest.mark.parametrize("async_task", [False, True])
def test_a_callback_submit_step_records_its_token_redacted(
    registry: TaskRegistry, env: TestEnvironment, async_task: bool
) -> None:
    outbox: list[str] = []

    if async_task:

        @task(id="approve", registry=registry)
        async def approve_async(ctx: AsyncContext, payload: None) -> Any:
            return await ctx.wait_for_callback("approval", outbox.append, timedelta(hours=1))

    else:

        @task(id="approve", registry=registry)
        def approve(ctx: Context, payload: None) -> Any:
            return ctx.wait_for_callback("approval", outbox.append, timedelta(hours=1))

    run = env.trigger("approve")
    env.run_until_idle()
    (token,) = outbox
    env.complete_callback(token, {"ok": True})
    info = env.run_until_complete(run.run_id)
    shown = json.dumps([entry.to_dict() for entry in env.history(run.run_id)]) + json.dumps(
        env.client.timeline(run.run_id)
    )

    assert info.result == {"ok": True}
    assert _ends(env, run.run_id) == [
        ("step_completed", "submit:approval", {"args": [f"{token[:6]}…"], "kwargs": {}})
    ]
    assert token not in shown


def test_replay_never_reads_the_input(registry: TaskRegistry, env: TestEnvironment) -> None:
    effects: list[int] = []
    invocations: list[None] = []

    @task(id="replayed", registry=registry)
    def replayed(ctx: Context, payload: int) -> int:
        invocations.append(None)
        # given another argument in each invocation: replay returns the recorded value
        # and never compares what the step is given with what its end recorded
        doubled = ctx.step("double", lambda n, _: effects.append(n) or n * 2, payload, invocations)
        ctx.sleep("pause", timedelta(seconds=5))
        return int(doubled)

    run = env.trigger("replayed", 21)
    env.run_until_idle()
    env.advance(timedelta(seconds=5))
    info = env.run_until_complete(run.run_id)
    stored = env.store.get_run(run.run_id)
    assert stored is not None
    report = replay_run(stored, env.store.load_history(run.run_id), env.codec, registry)

    assert info.result == 42
    assert effects == [21]  # the invocation after the sleep did not run the step again
    assert len(invocations) == 3
    assert report.status is ReplayStatus.OK
    assert _ends(env, run.run_id) == [
        ("step_completed", "double", {"args": [21, [None]], "kwargs": {}})
    ]
