"""Infrastructure errors are never a task's failure, and no wake-up is ever lost.

One test per defect of the faults issue, each failing before its fix: throttling and 5xx
consume no attempt and start no second child; a parent never waits forever on a child that
ended while its notification was lost; sibling batch children racing on the counters are
all counted; a failed invocation gives its lease back; user names cannot reach the engine's
own wait namespaces; the sweeper cannot be starved.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from durable import Context, RetryPolicy, RunStatus, TaskRegistry, task
from durable.errors import (
    ChildRunFailedError,
    ConflictError,
    IdempotencyConflictError,
    InfrastructureError,
    InputError,
    InvalidNameError,
)
from durable.records import WakeReason, WakeUp
from durable.services.sweeper import sweep
from durable.testing import Backend, Faults, SimulatedCrash, TestEnvironment
from durable.worker import Handled

from .conftest import Production

NO_RETRY = RetryPolicy(max_attempts=1)


def test_a_throttled_checkpoint_write_spends_no_attempt(registry: TaskRegistry) -> None:
    executions: list[str] = []

    @task(id="once", registry=registry, retry=NO_RETRY)
    def once(ctx: Context, payload: None) -> str:
        return ctx.step("charge", lambda: executions.append("charge") or "ch_1")

    faults = Faults().throttle("dynamodb", 1.0, {"append_checkpoint"}, times=1)
    with TestEnvironment(registry=registry, faults=faults) as env:
        run = env.trigger("once")
        Production(env).run(lambda: [run.run_id])
        info = env.get(run.run_id)

    # the step ran, its checkpoint write was throttled: the invocation ended, SQS delivered
    # the message again, and the next invocation wrote it. The only attempt is untouched.
    assert faults.injected["dynamodb:throttle"] == 1
    assert info.status is RunStatus.COMPLETED
    assert info.attempts == 1
    assert info.error is None
    assert env.infrastructure_errors == 1


@pytest.mark.parametrize("backend", ["memory", "moto"])
def test_a_write_that_timed_out_but_happened_is_not_done_twice(
    registry: TaskRegistry, backend: Backend
) -> None:
    executions: list[str] = []

    @task(id="once", registry=registry)
    def once(ctx: Context, payload: None) -> str:
        return ctx.step("charge", lambda: executions.append("charge") or "ch_1")

    # The checkpoint's write reaches DynamoDB, its answer never comes back.
    # (With an idempotency key the run is created by a transaction: the first PutItem is
    # the checkpoint's.)
    operation = "PutItem" if backend == "moto" else "append_checkpoint"
    faults = Faults().timeout("dynamodb", 1.0, {operation}, times=1)
    with TestEnvironment(backend=backend, registry=registry, faults=faults) as env:
        run = env.trigger("once", idempotency_key="once-1")
        Production(env).run(lambda: [run.run_id])
        info = env.get(run.run_id)
        history = env.history(run.run_id)

    assert faults.injected["dynamodb:timeout"] == 1
    assert info.status is RunStatus.COMPLETED
    assert executions == ["charge"]  # the replay found the checkpoint that was written
    assert [entry.kind for entry in history] == ["step_completed"]


def test_a_run_through_a_long_outage_never_ends_as_a_crash_loop(registry: TaskRegistry) -> None:
    @task(id="once", registry=registry, retry=NO_RETRY)
    def once(ctx: Context, payload: None) -> str:
        return ctx.step("charge", lambda: "ch_1")

    # Ten invocations in a row fail on their checkpoint, and most attempts to give the
    # lease back fail too: none of them died, so none may count toward a crash loop.
    faults = Faults(seed=4).throttle("dynamodb", 1.0, {"append_checkpoint"}, times=10)
    faults.throttle("dynamodb", 0.6, {"update_run"})
    with TestEnvironment(registry=registry, faults=faults) as env:
        run = env.trigger("once", idempotency_key="k")
        Production(env).run(lambda: [run.run_id], max_time=timedelta(days=1))
        info = env.get(run.run_id)

    assert faults.injected["dynamodb:throttle"] > 10
    assert info.status is RunStatus.COMPLETED, info.error


def test_task_code_cannot_catch_an_infrastructure_error(registry: TaskRegistry) -> None:
    caught: list[BaseException] = []

    @task(id="catches-everything", registry=registry, retry=NO_RETRY)
    def catches(ctx: Context, payload: None) -> str:
        try:
            ctx.step("a", lambda: 1)
        except Exception as exc:  # a task that swallows its steps' errors
            caught.append(exc)
        return "done"

    faults = Faults().server_error("dynamodb", 1.0, {"append_checkpoint"}, times=1)
    with TestEnvironment(registry=registry, faults=faults) as env:
        run = env.trigger("catches-everything")
        Production(env).run(lambda: [run.run_id])
        history = env.history(run.run_id)
        info = env.get(run.run_id)

    assert caught == []
    assert info.status is RunStatus.COMPLETED
    assert [(entry.kind, entry.name) for entry in history] == [("step_completed", "a")]


def test_a_throttled_run_creation_is_an_infrastructure_error_not_a_conflict(
    registry: TaskRegistry,
) -> None:
    @task(id="noop", registry=registry)
    def noop(ctx: Context, payload: None) -> None:
        return None

    faults = Faults().throttle("dynamodb", 1.0, {"TransactWriteItems"}, times=1)
    with TestEnvironment(backend="moto", registry=registry, faults=faults) as env:
        with pytest.raises(InfrastructureError):
            env.trigger("noop", idempotency_key="k-1")
        # the caller retries: one run, created once
        handle = env.trigger("noop", idempotency_key="k-1")
        again = env.trigger("noop", idempotency_key="k-1")

    assert handle.created is True
    assert again.created is False
    assert again.run_id == handle.run_id


def test_an_infrastructure_error_after_a_child_starts_starts_no_second_child(
    registry: TaskRegistry,
) -> None:
    children: list[str] = []

    @task(id="child", registry=registry)
    def child(ctx: Context, payload: int) -> int:
        children.append(ctx.run.id)
        return payload * 2

    @task(id="parent", registry=registry, retry=RetryPolicy(max_attempts=3))
    def parent(ctx: Context, payload: None) -> int:
        return int(ctx.invoke("child", 21))

    # The parent's first checkpoint (CHILD_STARTED) fails to be written: the child exists.
    faults = Faults().throttle("dynamodb", 1.0, {"append_checkpoint"}, times=1)
    with TestEnvironment(registry=registry, faults=faults) as env:
        run = env.trigger("parent")
        Production(env).run(lambda: [run.run_id])
        info = env.get(run.run_id)
        runs = env.list(task_id="child").runs

    assert info.status is RunStatus.COMPLETED
    assert info.result == 42
    assert info.attempts == 1
    assert len(runs) == 1
    assert len(children) == 1


def parent_and_child(registry: TaskRegistry) -> None:
    """`parent` invokes `child`, which returns "done"."""

    @task(id="child", registry=registry)
    def child(ctx: Context, payload: None) -> str:
        return "done"

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> str:
        return str(ctx.invoke("child", None))


@pytest.mark.parametrize("fault", ["crash", "sqs error"])
def test_a_parent_is_woken_even_when_its_childs_notification_is_lost(
    registry: TaskRegistry, fault: str
) -> None:
    parent_and_child(registry)
    with TestEnvironment(registry=registry) as env:
        lost: list[WakeUp] = []
        send = env.queue.send

        def losing_send(message: WakeUp, delay: timedelta = timedelta(0)) -> None:
            if message.reason is WakeReason.CHILD and not lost:
                lost.append(message)
                # the child's end is written; the process dies (or SQS fails) right here
                if fault == "crash":
                    raise SimulatedCrash("died before notifying the parent")
                raise InfrastructureError("SQS: InternalError (injected)")
            send(message, delay)

        env.queue.send = losing_send  # type: ignore[method-assign]
        run = env.trigger("parent")
        Production(env).run(lambda: [run.run_id], max_time=timedelta(hours=1))
        info = env.get(run.run_id)

    assert lost, "the notification was never attempted"
    assert info.status is RunStatus.COMPLETED
    assert info.result == "done"


def test_a_parent_whose_child_ended_unnoticed_is_found_by_the_sweeper(
    registry: TaskRegistry,
) -> None:
    parent_and_child(registry)
    with TestEnvironment(registry=registry) as env:
        send = env.queue.send

        def dying_send(message: WakeUp, delay: timedelta = timedelta(0)) -> None:
            if message.reason is WakeReason.CHILD:
                raise SimulatedCrash("died between the child's end and the parent's wake-up")
            send(message, delay)

        env.queue.send = dying_send  # type: ignore[method-assign]
        run = env.trigger("parent")
        env.run_until_idle()
        env.queue.send = send  # type: ignore[method-assign]
        # ...and the child's own message never comes back either (it went to the DLQ):
        while env.queue.pop_due(env.now() + timedelta(days=1)) is not None:
            pass
        assert env.get(run.run_id).status is RunStatus.WAITING
        production = Production(env)
        production.run(lambda: [run.run_id], max_time=timedelta(hours=1))
        info = env.get(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert production.sweeps >= 1


def test_sibling_batch_children_racing_on_the_counters_are_all_counted(
    registry: TaskRegistry,
) -> None:
    @task(id="item", registry=registry)
    def item(ctx: Context, payload: int) -> int:
        return payload + 1

    @task(id="fan-out", registry=registry)
    def fan_out(ctx: Context, payload: int) -> int:
        return sum(ctx.map("item", list(range(payload)), max_concurrency=3))

    # Half of the batch transactions are cancelled by a (simulated) concurrent sibling.
    faults = Faults(seed=3).transaction_conflict(0.5)
    with TestEnvironment(backend="moto", registry=registry, faults=faults) as env:
        run = env.trigger("fan-out", 6)
        Production(env).run(lambda: [run.run_id], max_time=timedelta(hours=2))
        info = env.get(run.run_id)

    assert faults.injected["dynamodb:conflict"] > 0
    assert info.status is RunStatus.COMPLETED
    assert info.result == sum(range(1, 7))


def test_an_invocation_that_fails_gives_its_lease_back(registry: TaskRegistry) -> None:
    @task(id="two-steps", registry=registry)
    def two_steps(ctx: Context, payload: None) -> int:
        ctx.step("a", lambda: 1)
        return int(ctx.step("b", lambda: 2))

    faults = Faults().server_error("dynamodb", 1.0, {"append_checkpoint"}, times=1)
    with TestEnvironment(registry=registry, faults=faults, redelivery=timedelta(seconds=30)) as env:
        run = env.trigger("two-steps")
        env.run_until_idle()
        env.advance(timedelta(seconds=31))  # SQS delivers the failed record again
        info = env.get(run.run_id)
        handled = [outcome for _, outcome in env.handled]

    # not BUSY until the 15-minute lease runs out: the redelivered message runs at once
    assert Handled.BUSY not in handled
    assert info.status is RunStatus.COMPLETED


@pytest.mark.parametrize("name", ["child:run_x", "batch:1:0", "callback:abc", "", " padded"])
def test_a_wait_name_cannot_reach_the_engines_namespaces(
    registry: TaskRegistry, env: TestEnvironment, name: str
) -> None:
    @task(id="waits", registry=registry, retry=NO_RETRY)
    def waits(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_event(name)

    run = env.trigger("waits")
    info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.FAILED
    assert info.error is not None
    assert info.error.type == "InvalidNameError"
    assert env.invocations < 5


def test_an_event_cannot_complete_a_callback(registry: TaskRegistry, env: TestEnvironment) -> None:
    tokens: list[str] = []

    @task(id="review", registry=registry)
    def review(ctx: Context, payload: None) -> Any:
        return ctx.wait_for_callback("review", submit=tokens.append, timeout=timedelta(hours=1))

    run = env.trigger("review")
    env.run_until_idle()
    (token,) = tokens

    for name in (f"callback:{token}", "callback:x"):
        with pytest.raises(InvalidNameError):
            env.send_event(run.run_id, name, {"data": "forged"})
    env.advance(timedelta(hours=2))  # the callback expires

    info = env.get(run.run_id)
    assert info.status is RunStatus.FAILED
    assert info.error is not None
    assert info.error.type == "WaitTimeoutError"


def test_the_sweeper_is_not_starved_by_runs_held_for_another_version(
    registry: TaskRegistry,
) -> None:
    @task(id="job", registry=registry)
    def job(ctx: Context, payload: int) -> int:
        return payload

    with TestEnvironment(registry=registry, code_version="v2") as env:
        # 1,200 runs pinned to a version nobody runs any more, all long overdue
        for n in range(1200):
            env.store.create_run(_pinned_run(env, n))
        env.run_until_idle()
        for n in range(1200):
            env.queue.send(WakeUp(f"run_old_{n:05d}", WakeReason.SWEEP))
        env.run_until_idle()  # each is held, and its wake_at moves on
        # a v2 run whose wake-up was lost
        run = env.trigger("job", 7)
        while env.queue.pop_due(env.now()) is not None:
            pass
        env.advance(timedelta(minutes=2))
        sent = sweep(env.store, env.queue, env.clock, grace=timedelta(seconds=60), limit=1000)
        env.run_until_idle()
        info = env.get(run.run_id)

    assert sent < 1000  # the held runs are not due again yet: they do not crowd the index
    assert info.status is RunStatus.COMPLETED


def test_the_sweeper_pages_past_a_full_page_of_runs_that_stay_due(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    for n in range(25):
        env.store.create_run(_pinned_run(env, n))  # never handled: they stay due
    sent = sweep(env.store, env.queue, env.clock, grace=timedelta(0), page_size=10)
    assert sent == 25


def test_a_failed_child_reads_the_same_on_replay(registry: TaskRegistry) -> None:
    seen: list[tuple[str, str]] = []

    @task(id="child", registry=registry, retry=NO_RETRY)
    def child(ctx: Context, payload: None) -> None:
        raise ValueError("no")

    @task(id="parent", registry=registry)
    def parent(ctx: Context, payload: None) -> str:
        try:
            ctx.invoke("child", None)
        except ChildRunFailedError as exc:
            seen.append((exc.status, exc.error_type))
        ctx.sleep("then", timedelta(seconds=1))  # one more invocation: a replay
        return "ok"

    with TestEnvironment(registry=registry) as env:
        run = env.trigger("parent")
        info = env.run_until_complete(run.run_id)

    assert info.status is RunStatus.COMPLETED
    assert seen == [("FAILED", "ValueError"), ("FAILED", "ValueError")]


def test_a_conflict_is_only_a_condition_that_did_not_hold(registry: TaskRegistry) -> None:
    """ConflictError stays the store's answer to a lost condition, not to a fault."""

    @task(id="noop", registry=registry)
    def noop(ctx: Context, payload: None) -> None:
        return None

    with TestEnvironment(backend="moto", registry=registry) as env:
        run = env.trigger("noop")
        with pytest.raises(ConflictError):
            env.store.create_run(env.store.get_run(run.run_id))  # type: ignore[arg-type]


def test_a_reused_idempotency_key_with_another_payload_is_refused(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="charge", registry=registry)
    def charge(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    first = env.trigger("charge", {"amount": 5, "currency": "EUR"}, idempotency_key="k")
    same = env.trigger("charge", {"currency": "EUR", "amount": 5}, idempotency_key="k")
    with pytest.raises(IdempotencyConflictError) as refused:
        env.trigger("charge", {"amount": 6, "currency": "EUR"}, idempotency_key="k")

    assert (same.run_id, same.created) == (first.run_id, False)
    assert refused.value.run_id == first.run_id
    assert refused.value.code == "idempotency_conflict"
    assert len(env.list().runs) == 1


def test_a_retried_trigger_sends_the_wake_up_its_first_try_could_not(
    registry: TaskRegistry,
) -> None:
    @task(id="noop", registry=registry)
    def noop(ctx: Context, payload: None) -> str:
        return "ran"

    # The first try stores the run, then the process serving the call dies before the send.
    faults = Faults().server_error("sqs", 1.0, {"send"}, times=1)
    with TestEnvironment(registry=registry, faults=faults) as env:
        with pytest.raises(InfrastructureError):
            env.trigger("noop", idempotency_key="k")
        again = env.trigger("noop", idempotency_key="k")  # the caller retries
        env.run_until_idle()  # no sweeper, no clock: the retry's wake-up runs it
        info = env.get(again.run_id)

    assert again.created is False
    assert info.status is RunStatus.COMPLETED


def test_values_too_deep_to_read_back_are_refused_where_they_enter(
    registry: TaskRegistry, env: TestEnvironment
) -> None:
    @task(id="anything", registry=registry)
    def anything(ctx: Context, payload: Any) -> Any:
        return ctx.wait_for_event("more")

    deep: Any = "bottom"
    for _ in range(200):
        deep = [deep]

    with pytest.raises(InputError, match="over 128 levels"):
        env.trigger("anything", deep)
    assert env.list().runs == []
    run = env.trigger("anything", [[["fine"]]])
    env.run_until_idle()
    with pytest.raises(InputError):
        env.send_event(run.run_id, "more", deep)
    assert env.store.list_inbox(run.run_id) == []


def test_a_retried_event_with_an_id_is_delivered_once(registry: TaskRegistry) -> None:
    @task(id="counts", registry=registry)
    def counts(ctx: Context, payload: None) -> list[Any]:
        return [ctx.wait_for_event("tick"), ctx.wait_for_event("tick", timeout=timedelta(0))]

    # The API's process dies right after the event is stored: the caller sends it again.
    with TestEnvironment(registry=registry) as env:
        run = env.trigger("counts")
        env.run_until_idle()
        faults_at = {"put_inbox"}
        put_inbox = env.store.put_inbox

        def dying_put(event: Any) -> None:
            put_inbox(event)
            if faults_at:
                faults_at.clear()
                raise SimulatedCrash("died after storing the event")

        env.store.put_inbox = dying_put  # type: ignore[method-assign]
        with pytest.raises(SimulatedCrash):
            env.send_event(run.run_id, "tick", 1, event_id="delivery-1")
        env.send_event(run.run_id, "tick", 1, event_id="delivery-1")  # the retry
        info = env.run_until_complete(run.run_id)

    # one event: the second wait, with no second event, times out
    assert info.status is RunStatus.FAILED
    assert info.error is not None and info.error.type == "WaitTimeoutError"
    received = [e for e in env.store.load_history(run.run_id) if e.kind == "event_received"]
    assert len(received) == 1
    assert env.store.list_inbox(run.run_id) == []  # consumed, so deleted


def _pinned_run(env: TestEnvironment, n: int) -> Any:
    from durable.records import RunRecord

    past = env.now() - timedelta(hours=1)
    return RunRecord(
        run_id=f"run_old_{n:05d}",
        task_id="job",
        status=RunStatus.QUEUED,
        payload="1",
        created_at=past,
        updated_at=past,
        code_version="v1",
        wake_at=past,
    )


def test_a_run_with_a_large_payload_a_large_result_and_a_huge_error_fits_its_item(
    registry: TaskRegistry,
) -> None:
    big = "x" * 240_000  # each under the inline limit of old (256 KiB), together over 400 KB

    @task(id="echo", registry=registry)
    def echo(ctx: Context, payload: str) -> str:
        return ctx.step("copy", lambda: payload + "!")

    @task(id="explodes", registry=registry, retry=NO_RETRY)
    def explodes(ctx: Context, payload: str) -> None:
        def deep(n: int) -> None:
            if n == 0:
                raise ValueError(payload * 2)  # a message of 400,000 characters
            deep(n - 1)

        ctx.step("deep", lambda: deep(400))  # a traceback of hundreds of frames

    with TestEnvironment(backend="moto", registry=registry) as env:
        echoed = env.trigger("echo", big)
        exploded = env.trigger("explodes", big)
        echo_info = env.run_until_complete(echoed.run_id)
        explode_info = env.run_until_complete(exploded.run_id)
        largest = max(_item_sizes(env))

    # moto does not refuse an update past 400 KB as DynamoDB does: measure every item.
    assert largest < 400 * 1024

    assert echo_info.status is RunStatus.COMPLETED
    assert echo_info.result == big + "!"
    assert explode_info.status is RunStatus.FAILED
    assert explode_info.error is not None
    assert explode_info.error.type == "StepFailedError" or "ValueError" in explode_info.error.type
    assert len(explode_info.error.message) < 10_000
    assert explode_info.error.traceback is None or len(explode_info.error.traceback) < 20_000


def _item_sizes(env: TestEnvironment) -> list[int]:
    """The size of every item of the table, as DynamoDB counts it (names + values)."""
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1")
    sizes = []
    for page in client.get_paginator("scan").paginate(TableName="durable-runs"):
        sizes.extend(sum(len(k) + _value_size(v) for k, v in i.items()) for i in page["Items"])
    return sizes


def _value_size(value: Any) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return len(str(inner).encode("utf-8"))
    if kind == "M":
        return 3 + sum(len(k) + _value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    return 1
