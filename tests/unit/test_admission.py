"""Rate limits, debounce, ttl and deduplication at trigger (`durable.services.admission`,
`durable.services.expiry`), on memory and moto, on the virtual clock: when runs really
start (their `started_at`, written by the worker's lease), what they ran with, how they end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.unit.test_api import Api

from durable import Context, Queue, RateLimit, TaskRegistry, task
from durable.errors import InputError
from durable.records import RunStatus
from durable.testing import Backend, MotoBackend, TestEnvironment

MINUTE = timedelta(minutes=1)
START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)  # ten seconds into a minute
LIMITED = Queue("llm", rate_limit=RateLimit(10, MINUTE))
DEBOUNCED = Queue("search-index", debounce=timedelta(seconds=30))
# Debounced and rate-limited: a run at most 5 s after triggers stop, one start a minute.
DIGEST = Queue("digest", debounce=timedelta(seconds=5), rate_limit=RateLimit(1, MINUTE))


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="summarize", registry=registry, queue=LIMITED)
    def summarize(ctx: Context, payload: Any) -> Any:
        return ctx.step("echo", lambda: payload)

    @task(id="reindex", registry=registry, queue=DEBOUNCED)
    def reindex(ctx: Context, payload: Any) -> Any:
        return ctx.step("index", lambda: payload)

    @task(id="digest", registry=registry, queue=DIGEST)
    def digest(ctx: Context, payload: Any) -> Any:
        return ctx.step("send", lambda: payload)

    @task(id="plain", registry=registry)
    def plain(ctx: Context, payload: Any) -> Any:
        return payload

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: Any) -> Any:
        return [ctx.invoke("reindex", n) for n in range(2)]

    @task(id="fan-out", registry=registry)
    def fan_out(ctx: Context, payload: Any) -> Any:
        return list(ctx.map("summarize", list(range(12)), max_concurrency=12))

    return registry


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoBackend]:
    with MotoBackend() as backend:
        yield backend


@pytest.fixture(params=["memory", "moto"])
def env(request: pytest.FixtureRequest) -> Iterator[TestEnvironment]:
    backend: Backend = request.param
    shared = request.getfixturevalue("moto") if backend == "moto" else None
    with TestEnvironment(backend=backend, registry=_registry(), start=START, moto=shared) as e:
        yield e


def _minute(when: datetime | None) -> int:
    assert when is not None
    return int((when - START.replace(second=0)) // MINUTE)


def _run_all(env: TestEnvironment, run_ids: list[str], horizon: timedelta) -> None:
    env.advance(horizon)
    for run_id in run_ids:
        assert env.get(run_id).status is RunStatus.COMPLETED, env.get(run_id)


def test_thirty_runs_at_ten_a_minute_start_ten_in_each_of_three_minutes(
    env: TestEnvironment,
) -> None:
    handles = [env.trigger("summarize", {"n": n}) for n in range(30)]
    assert len({handle.run_id for handle in handles}) == 30
    queued = [env.get(handle.run_id) for handle in handles]
    assert [run.waiting_for for run in queued].count("rate:llm") == 20
    env.run_until_idle()
    assert sum(env.get(h.run_id).status is RunStatus.COMPLETED for h in handles) == 10
    _run_all(env, [handle.run_id for handle in handles], timedelta(minutes=3))
    starts = [env.get(handle.run_id).started_at for handle in handles]
    assert Counter(_minute(start) for start in starts) == {0: 10, 1: 10, 2: 10}
    # Each later minute's runs start at its first instant, none earlier.
    assert sorted({start for start in starts if _minute(start) > 0}) == [
        START.replace(second=0) + MINUTE,
        START.replace(second=0) + 2 * MINUTE,
    ]
    # None dropped, each ran with its own payload.
    assert sorted(env.get(h.run_id).result["n"] for h in handles) == list(range(30))


def test_runs_that_come_after_their_window_take_a_place_again(env: TestEnvironment) -> None:
    # Ten runs admitted to minute 0 meet no worker until minute 1 (workers behind), when
    # ten more are triggered: starting the late ones then would make 20 starts in minute 1.
    late = [env.trigger("summarize", n) for n in range(10)]
    env.clock.advance(MINUTE)
    fresh = [env.trigger("summarize", n) for n in range(10, 20)]
    env.run_until_idle()
    handled = Counter(str(outcome) for _, outcome in env.handled)
    assert handled["readmitted"] == 10
    _run_all(env, [h.run_id for h in late + fresh], 2 * MINUTE)
    starts = Counter(_minute(env.get(h.run_id).started_at) for h in late + fresh)
    assert starts == {1: 10, 2: 10}
    assert {_minute(env.get(h.run_id).started_at) for h in late} == {2}


def test_each_concurrency_key_has_its_own_ten_a_minute(env: TestEnvironment) -> None:
    handles = {
        key: [env.trigger("summarize", n, concurrency_key=key) for n in range(12)]
        for key in ("tenant:a", "tenant:b")
    }
    ids = [handle.run_id for runs in handles.values() for handle in runs]
    _run_all(env, ids, timedelta(minutes=2))
    for runs in handles.values():
        starts = [env.get(handle.run_id).started_at for handle in runs]
        assert Counter(_minute(start) for start in starts) == {0: 10, 1: 2}


def test_a_batch_of_a_rate_limited_task_starts_within_the_limit(env: TestEnvironment) -> None:
    handle = env.trigger("fan-out", None)
    info = env.run_until_complete(handle.run_id)
    assert info.status is RunStatus.COMPLETED and info.result == list(range(12))
    children = env.list(task_id="summarize").runs
    assert len(children) == 12
    starts = Counter(_minute(env.get(child.run_id).started_at) for child in children)
    assert starts == {0: 10, 1: 2}


def test_a_batch_child_started_again_takes_no_second_place(env: TestEnvironment) -> None:
    starter = env.worker.starter  # as the batch service starts children: their ids given
    for _ in range(5):
        again = [starter.trigger("summarize", n, run_id=f"run_child_{n}") for n in range(9)]
    assert not any(handle.created for handle in again)
    tenth = env.trigger("summarize", "tenth")
    eleventh = env.trigger("summarize", "eleventh")
    env.run_until_idle()
    assert env.get(tenth.run_id).status is RunStatus.COMPLETED
    assert env.get(eleventh.run_id).waiting_for == "rate:llm"


def test_a_delayed_trigger_takes_its_place_from_its_delayed_start(env: TestEnvironment) -> None:
    # Minute 5 is filled by delayed triggers; one more delayed into it starts in minute 6.
    delay = timedelta(minutes=5)
    handles = [env.trigger("summarize", n, delay=delay) for n in range(11)]
    now_runs = [env.trigger("summarize", n) for n in range(10)]  # minute 0 is untouched
    _run_all(env, [h.run_id for h in handles + now_runs], timedelta(minutes=7))
    assert Counter(_minute(env.get(h.run_id).started_at) for h in handles) == {5: 10, 6: 1}
    assert Counter(_minute(env.get(h.run_id).started_at) for h in now_runs) == {0: 10}
    late = [env.get(h.run_id) for h in handles if _minute(env.get(h.run_id).started_at) == 6]
    assert late[0].started_at == START.replace(second=0) + 6 * MINUTE


def test_a_retried_trigger_with_its_idempotency_key_takes_no_second_place(
    env: TestEnvironment,
) -> None:
    first = env.trigger("summarize", "x", idempotency_key="k")
    again = [env.trigger("summarize", "x", idempotency_key="k") for _ in range(15)]
    assert {handle.run_id for handle in again} == {first.run_id}
    assert not any(handle.created for handle in again)
    others = [env.trigger("summarize", n) for n in range(9)]  # the rest of minute 0
    tenth = env.trigger("summarize", "tenth")
    _run_all(env, [first.run_id, tenth.run_id] + [h.run_id for h in others], 2 * MINUTE)
    assert {_minute(env.get(h.run_id).started_at) for h in [first, *others]} == {0}
    assert _minute(env.get(tenth.run_id).started_at) == 1


def test_five_debounced_triggers_make_one_run_with_the_last_payload(
    env: TestEnvironment,
) -> None:
    handles = []
    for n in range(5):
        handles.append(env.trigger("reindex", {"version": n}))
        env.advance(timedelta(seconds=10))  # each within the 30 s of the one before
    assert [handle.created for handle in handles] == [True, False, False, False, False]
    assert len({handle.run_id for handle in handles}) == 1
    run_id = handles[0].run_id
    pending = env.get(run_id)
    assert pending.status is RunStatus.QUEUED and pending.started_at is None
    assert pending.waiting_for == "debounce:search-index"
    last_trigger = START + timedelta(seconds=40)
    assert pending.wake_at == last_trigger + timedelta(seconds=30)
    env.advance(timedelta(seconds=60))
    run = env.get(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.result == {"version": 4}
    assert run.started_at == last_trigger + timedelta(seconds=30)
    assert len(env.list(task_id="reindex").runs) == 1
    # After it started, a trigger makes a second run; per key, the keys are apart.
    later = env.trigger("reindex", {"version": 5})
    other_key = env.trigger("reindex", {"version": 6}, concurrency_key="shop:2")
    assert later.created and later.run_id != run_id
    assert other_key.created and other_key.run_id != later.run_id
    env.advance(timedelta(seconds=31))
    assert env.get(later.run_id).result == {"version": 5}
    assert env.get(other_key.run_id).result == {"version": 6}


def test_debounced_triggers_of_a_rate_limited_queue_start_one_run_a_minute_with_the_last_payload(
    env: TestEnvironment,
) -> None:
    # Triggers 20 s apart, each past the 5 s debounce: without the rate limit, each would
    # make a run. A run takes its place when it comes to start; a run waiting for its
    # minute takes the payloads triggered meanwhile and keeps its place.
    handles = []
    for n in range(8):
        handles.append(env.trigger("digest", n))
        if n == 1:
            env.advance(timedelta(seconds=6))  # B came to start: minute 0 was full
            waiting = env.get(handles[1].run_id)
            assert (waiting.status, waiting.waiting_for) == (RunStatus.QUEUED, "rate:digest")
            assert waiting.wake_at == START.replace(second=0) + MINUTE
            env.advance(timedelta(seconds=14))
        else:
            env.advance(timedelta(seconds=20))
    env.advance(timedelta(minutes=2))
    runs = sorted(
        (env.get(run.run_id) for run in env.list(task_id="digest").runs),
        key=lambda run: run.started_at or START,
    )
    assert [run.status for run in runs] == [RunStatus.COMPLETED] * 4
    assert [run.result for run in runs] == [0, 2, 5, 7]  # the last payload before each start
    assert [run.started_at for run in runs] == [
        START + timedelta(seconds=5),  # 12:00:15, one period after the first trigger
        START.replace(second=0) + MINUTE,  # minute 1's start, and so on: one a minute
        START.replace(second=0) + 2 * MINUTE,
        START.replace(second=0) + 3 * MINUTE,
    ]
    assert [handle.created for handle in handles] == [
        True, True, False, True, False, False, True, False
    ]  # fmt: skip


def test_a_child_run_of_a_debounced_task_is_not_debounced(env: TestEnvironment) -> None:
    handle = env.trigger("parent", None)
    info = env.run_until_complete(handle.run_id)
    assert info.status is RunStatus.COMPLETED
    assert info.result == [0, 1]
    assert len(env.list(task_id="reindex").runs) == 2


def test_a_debounced_trigger_refuses_an_idempotency_key(env: TestEnvironment) -> None:
    with pytest.raises(InputError, match="debounced"):
        env.trigger("reindex", 1, idempotency_key="k")
    assert env.list().runs == []


def test_a_run_held_back_by_its_rate_limit_past_its_ttl_ends_cancelled(
    env: TestEnvironment,
) -> None:
    in_time = [env.trigger("summarize", n, ttl=timedelta(seconds=90)) for n in range(20)]
    late = env.trigger("summarize", "late", ttl=timedelta(seconds=90))
    env.advance(timedelta(minutes=3))
    for handle in in_time:
        assert env.get(handle.run_id).status is RunStatus.COMPLETED
    run = env.get(late.run_id)
    assert run.status is RunStatus.CANCELLED
    assert run.started_at is None
    assert run.error is not None and run.error.type == "RunExpired"
    assert "not started by 2030-01-01T12:01:40+00:00, the end of its ttl" in run.error.message
    assert "queued since 2030-01-01T12:00:10+00:00" in run.error.message
    # It ended at its ttl's end, not at its window (minute 2).
    assert run.finished_at == START + timedelta(seconds=90)
    assert env.history(late.run_id) == []  # never ran


def test_a_cancelled_pending_run_is_replaced_by_a_new_one_and_an_expired_run_can_be_retried(
    env: TestEnvironment,
) -> None:
    pending = env.trigger("reindex", 1)
    env.client.cancel(pending.run_id)
    after = env.trigger("reindex", 2)
    assert after.created and after.run_id != pending.run_id
    env.advance(timedelta(seconds=31))
    assert env.get(after.run_id).result == 2
    # A run expired by its ttl, retried by hand, starts: the ttl no longer holds it.
    expired = env.trigger("plain", "x", ttl=timedelta(seconds=1))
    env.clock.advance(timedelta(seconds=2))
    env.run_until_idle()
    assert env.get(expired.run_id).status is RunStatus.CANCELLED
    env.client.retry(expired.run_id)
    env.run_until_idle()
    assert env.get(expired.run_id).status is RunStatus.COMPLETED


def test_a_ttl_ends_a_run_whose_start_came_too_late(env: TestEnvironment) -> None:
    # No limit held it: its start message came after its ttl (the workers were behind).
    handle = env.trigger("plain", 1, ttl=timedelta(seconds=5))
    env.clock.advance(timedelta(seconds=6))
    env.run_until_idle()
    assert env.get(handle.run_id).status is RunStatus.CANCELLED
    on_time = env.trigger("plain", 2, ttl=timedelta(seconds=5))
    env.run_until_idle()
    assert env.get(on_time.run_id).status is RunStatus.COMPLETED


def test_an_idempotency_key_deduplicates_within_its_ttl_and_not_after(
    env: TestEnvironment,
) -> None:
    # Deduplication within a window is the idempotency key's ttl.
    window = timedelta(minutes=10)
    first = env.trigger("plain", "p", idempotency_key="dedup", idempotency_key_ttl=window)
    env.advance(timedelta(minutes=9))
    second = env.trigger("plain", "p", idempotency_key="dedup", idempotency_key_ttl=window)
    assert (second.run_id, second.created) == (first.run_id, False)
    env.advance(timedelta(minutes=2))
    third = env.trigger("plain", "p", idempotency_key="dedup", idempotency_key_ttl=window)
    assert third.created and third.run_id != first.run_id


def test_the_http_api_answers_a_debounced_trigger_with_the_pending_run_and_shows_an_expiry() -> (
    None
):
    with TestEnvironment(registry=_registry(), start=START) as env:
        api = Api(env.client)
        first = api.post("/tasks/reindex/runs", {"payload": 1})
        second = api.post("/tasks/reindex/runs", {"payload": 2})
        assert first.status == 202, first.text
        assert first.json["created"] is True
        assert second.json["run_id"] == first.json["run_id"]
        assert second.json["created"] is False
        assert second.json["status"] == "QUEUED"
        pending = api.get(f"/runs/{first.json['run_id']}").json
        assert (pending["payload"], pending["waiting_for"]) == (2, "debounce:search-index")
        refused = api.post("/tasks/reindex/runs", {"payload": 3, "idempotency_key": "k"})
        assert refused.status == 400, refused.text
        assert "debounced" in refused.json["error"]["message"]
        # A run held back by the rate limit past its ttl.
        for n in range(10):
            api.post("/tasks/summarize/runs", {"payload": n})
        late = api.post("/tasks/summarize/runs", {"payload": "late", "ttl_seconds": 30}).json
        queued = api.get(f"/runs/{late['run_id']}").json
        assert (queued["status"], queued["waiting_for"]) == ("QUEUED", "rate:llm")
        env.advance(timedelta(minutes=1))
        ended = api.get(f"/runs/{late['run_id']}").json
        assert ended["status"] == "CANCELLED"
        assert ended["error"]["type"] == "RunExpired"
        assert ended["error"]["message"].startswith("not started by 2030-01-01T12:00:40+00:00")
