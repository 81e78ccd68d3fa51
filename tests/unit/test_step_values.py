"""A step's value is the same fresh and replayed: decoded through its return annotation when
it has one, else the JSON round trip of what it returned, on both paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from durable import Context, RunStatus, TaskRegistry, task
from durable.context import AsyncContext
from durable.errors import AnnotationError, UnresolvedAnnotationError
from durable.testing import TestEnvironment

WHEN = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


class Socket:
    """Not a type pydantic can validate."""


class Point(BaseModel):
    x: int
    y: int


def at() -> datetime:
    return WHEN


def pair() -> tuple[int, int]:
    return (1, 2)


def point() -> Point:
    return Point(x=1, y=2)


def unannotated_when():  # type: ignore[no-untyped-def]
    return WHEN


def unannotated_pair():  # type: ignore[no-untyped-def]
    return (1, 2)


def unannotated_tags():  # type: ignore[no-untyped-def]
    return {"tags": ("a", "b")}


def points() -> dict[str, list[Point]]:
    return {"row": [Point(x=1, y=2)]}


def _seen_fresh_and_replayed(
    registry: TaskRegistry, env: TestEnvironment, fn: Callable[[], Any]
) -> list[tuple[str, Any]]:
    """What task code saw from `ctx.step(fn)`: once fresh, once replayed after a sleep."""
    seen: list[tuple[str, Any]] = []

    @task(id="observe", registry=registry)
    def observe(ctx: Context, payload: None) -> None:
        value = ctx.step("value", fn)
        seen.append(("replay" if ctx.is_replaying else "fresh", value))
        ctx.sleep("nap", timedelta(minutes=1))

    run = env.trigger("observe")
    info = env.run_until_complete(run.run_id)
    assert info.status == RunStatus.COMPLETED, info.error
    assert [phase for phase, _ in seen] == ["fresh", "replay"]
    return seen


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (at, WHEN),
        (pair, (1, 2)),
        (point, Point(x=1, y=2)),
        (points, {"row": [Point(x=1, y=2)]}),
    ],
    ids=["datetime", "tuple", "model", "nested-models"],
)
def test_an_annotated_step_gives_its_annotated_type_fresh_and_replayed(
    registry: TaskRegistry, env: TestEnvironment, fn: Callable[[], Any], expected: Any
) -> None:
    seen = _seen_fresh_and_replayed(registry, env, fn)

    for _, value in seen:
        assert value == expected
        assert type(value) is type(expected)
    # nested values too: a model inside a list inside a dict
    if isinstance(expected, dict):
        assert all(type(value["row"][0]) is Point for _, value in seen)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (unannotated_when, "2024-05-17T09:30:00Z"),
        (unannotated_pair, [1, 2]),
        (unannotated_tags, {"tags": ["a", "b"]}),
    ],
    ids=["datetime", "tuple", "nested-tuple"],
)
def test_an_unannotated_step_gives_the_json_round_trip_fresh_too(
    registry: TaskRegistry, env: TestEnvironment, fn: Callable[[], Any], expected: Any
) -> None:
    # given a step with no annotation: nothing says what its JSON should become
    seen = _seen_fresh_and_replayed(registry, env, fn)

    # then the first run sees what every replay will see, not the raw value
    assert seen == [("fresh", expected), ("replay", expected)]
    assert all(type(value) is type(expected) for _, value in seen)


def test_an_async_step_gives_its_annotated_type_fresh_and_replayed(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    seen: list[tuple[str, Any, Any]] = []

    async def fetch_at() -> datetime:
        return WHEN

    async def fetch_pair():  # type: ignore[no-untyped-def]
        return (1, 2)

    @task(id="observe-async", registry=registry)
    async def observe(ctx: AsyncContext, payload: None) -> None:
        when = await ctx.step("when", fetch_at)
        both = await ctx.step("pair", fetch_pair)
        seen.append(("replay" if ctx.is_replaying else "fresh", when, both))
        await ctx.sleep("nap", timedelta(minutes=1))

    run = env.trigger("observe-async")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED, info.error
    assert seen == [("fresh", WHEN, [1, 2]), ("replay", WHEN, [1, 2])]
    assert all(type(when) is datetime for _, when, _ in seen)


def test_the_value_handed_to_a_compensation_is_the_decoded_one(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    compensated: list[Any] = []

    def fail() -> None:
        raise ValueError("boom")

    @task(id="compensated", registry=registry)
    def compensated_task(ctx: Context, payload: None) -> None:
        ctx.step("book", pair, compensate=compensated.append)
        ctx.step("fail", fail)

    run = env.trigger("compensated")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert compensated == [(1, 2)]
    assert type(compensated[0]) is tuple


def test_a_value_that_is_not_json_still_fails_with_a_clear_error(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="not-json", registry=registry)
    def not_json(ctx: Context, payload: None) -> None:
        ctx.step("socket", object)

    run = env.trigger("not-json")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert info.error is not None
    assert info.error.type == "SerializationError"
    assert "object is not JSON-serializable" in info.error.message


def test_a_value_that_does_not_fit_its_annotation_fails_the_same_on_every_replay(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls: list[int] = []

    def wrong() -> datetime:
        calls.append(1)
        return "not a date"  # type: ignore[return-value]

    @task(id="wrong", registry=registry)
    def wrong_task(ctx: Context, payload: None) -> None:
        ctx.step("wrong", wrong)

    run = env.trigger("wrong")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert info.error is not None
    assert info.error.type == "SerializationError"
    assert "step 'wrong'" in info.error.message
    assert "return annotation" in info.error.message
    # recorded once: the task's retries replay it rather than repeat its side effect
    assert calls == [1]
    kinds = [entry.kind for entry in env.history(run.run_id)]
    assert kinds.count("step_completed") == 1


def test_a_step_whose_return_annotation_names_nothing_fails_before_it_runs(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    calls: list[int] = []

    def fetch() -> Undefined:  # type: ignore[name-defined]  # noqa: F821
        calls.append(1)
        return {}

    @task(id="unresolved-step", registry=registry)
    def unresolved(ctx: Context, payload: None) -> None:
        ctx.step("fetch", fetch)

    run = env.trigger("unresolved-step")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.FAILED
    assert info.error is not None
    assert info.error.type == "UnresolvedAnnotationError"
    assert "'Undefined'" in info.error.message
    assert "fetch" in info.error.message
    assert calls == []  # failing loudly beats a model silently decoded as a dict


def test_a_step_annotated_with_a_local_class_it_uses_resolves(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    # given a model local to this test; the step's body refers to it (a closure)
    class Local(BaseModel):
        n: int

    seen: list[Any] = []

    def make() -> Local:
        return Local(n=3)

    @task(id="local", registry=registry)
    def local_task(ctx: Context, payload: None) -> None:
        seen.append(ctx.step("make", make))
        ctx.sleep("nap", timedelta(minutes=1))

    run = env.trigger("local")
    info = env.run_until_complete(run.run_id)

    assert info.status == RunStatus.COMPLETED, info.error
    assert seen == [Local(n=3), Local(n=3)]


def test_step_return_annotation_errors_are_typed() -> None:
    from durable.annotations import step_return_annotation

    def undefined() -> Nowhere:  # type: ignore[name-defined]  # noqa: F821
        raise AssertionError

    def unsupported() -> Socket:
        raise AssertionError

    with pytest.raises(UnresolvedAnnotationError) as unresolved:
        step_return_annotation(undefined)
    assert unresolved.value.name == "Nowhere"
    assert isinstance(unresolved.value, NameError)
    with pytest.raises(AnnotationError, match="pydantic"):
        step_return_annotation(unsupported)
