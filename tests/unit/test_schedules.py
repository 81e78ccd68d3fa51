"""Scheduled tasks: `@task(cron=...)` fires one run per scheduled instant, on the virtual clock.

`TestEnvironment.advance` fires each instant it passes (as an on-time sweeper would);
an environment made with `schedules=False` fires only on `sweep()`/`fire_schedules()`, which
is how these tests play a sweeper that is late or down.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aws_lambda_powertools import Metrics
from pydantic import BaseModel

from durable import Context, RunStatus, TaskRegistry, task
from durable.blobs.memory import MemoryBlobStore
from durable.bootstrap import Runtime
from durable.client import Client, RunInfoView
from durable.clock import VirtualClock
from durable.cron import CronSchedule
from durable.queues.memory import MemoryWakeQueue
from durable.services.schedules import fire_due_schedules, idempotency_key, next_firing
from durable.settings import Settings
from durable.storage.memory import MemoryRunStore
from durable.testing import TestEnvironment

JAN_1 = datetime(2030, 1, 1, tzinfo=UTC)  # a Tuesday
NINE = JAN_1.replace(hour=9)
MINUTE = timedelta(minutes=1)
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def daily(registry: TaskRegistry) -> TaskRegistry:
    """A registry with `report` at 09:00 UTC every day; it returns what it saw as started_at."""

    @task(id="report", cron="0 9 * * *", timezone="UTC", registry=registry)
    def report(ctx: Context, payload: None) -> dict[str, Any]:
        day: str = ctx.step("gather", lambda: ctx.run.started_at.date().isoformat())
        ctx.sleep("settle", timedelta(minutes=30))  # the replay after it sees the same start
        return {"started_at": ctx.run.started_at.isoformat(), "day": day}

    @task(id="plain", registry=registry)
    def plain(ctx: Context, payload: Any) -> Any:
        return payload

    return registry


@pytest.fixture
def late_env(daily: TaskRegistry) -> Iterator[TestEnvironment]:
    """An environment whose clock moves without firing: only `sweep()` fires schedules."""
    with TestEnvironment(registry=daily, start=JAN_1, schedules=False) as environment:
        yield environment


def runs_of(env: TestEnvironment, task_id: str) -> list[RunInfoView]:
    """The task's runs, oldest first."""
    return list(reversed(env.list(task_id=task_id, limit=1000).runs))


# -- firing on time ------------------------------------------------------------------------


def test_advancing_two_days_fires_a_daily_task_twice_at_nine(daily: TaskRegistry) -> None:
    with TestEnvironment(registry=daily, start=JAN_1) as env:
        env.advance(timedelta(days=2))
        runs = runs_of(env, "report")

    assert [run.started_at for run in runs] == [NINE, NINE + timedelta(days=1)]
    assert [run.created_at for run in runs] == [run.started_at for run in runs]
    assert [run.status for run in runs] == [RunStatus.COMPLETED] * 2
    assert [run.result for run in runs] == [
        {"started_at": "2030-01-01T09:00:00+00:00", "day": "2030-01-01"},
        {"started_at": "2030-01-02T09:00:00+00:00", "day": "2030-01-02"},
    ]
    assert [run.idempotency_key for run in runs] == [
        "cron:report:2030-01-01T09:00:00+00:00",
        "cron:report:2030-01-02T09:00:00+00:00",
    ]
    assert [run.payload for run in runs] == [None, None]


def test_an_instant_fires_when_the_clock_reaches_it_not_before(daily: TaskRegistry) -> None:
    with TestEnvironment(registry=daily, start=JAN_1) as env:
        env.advance(timedelta(hours=9) - timedelta(seconds=1))
        assert runs_of(env, "report") == []
        env.advance(timedelta(seconds=1))
        [run] = runs_of(env, "report")
        assert run.started_at == NINE
        assert run.status is RunStatus.WAITING  # it sleeps 30 minutes, on the virtual clock
        env.advance(timedelta(minutes=30))
        assert env.get(run.run_id).status is RunStatus.COMPLETED


def test_a_task_without_cron_never_fires(daily: TaskRegistry) -> None:
    with TestEnvironment(registry=daily, start=JAN_1) as env:
        env.advance(timedelta(days=3))
        assert runs_of(env, "plain") == []
        assert len(runs_of(env, "report")) == 3


def test_a_cron_task_can_still_be_triggered_by_hand(daily: TaskRegistry) -> None:
    with TestEnvironment(registry=daily, start=JAN_1.replace(hour=12)) as env:
        run = env.trigger("report")
        info = env.run_until_complete(run.run_id)
    assert info.started_at == JAN_1.replace(hour=12)
    assert info.idempotency_key is None
    assert info.result["day"] == "2030-01-01"


def test_without_schedules_advance_fires_nothing(late_env: TestEnvironment) -> None:
    late_env.advance(timedelta(days=2))
    assert runs_of(late_env, "report") == []


# -- exactly once per instant ----------------------------------------------------------------


def test_repeated_sweeps_fire_an_instant_once(late_env: TestEnvironment) -> None:
    late_env.clock.set(NINE)

    fired = late_env.fire_schedules()
    for _ in range(3):
        late_env.sweep()
        late_env.advance(MINUTE)
    late_env.run_until_idle()

    assert len(fired) == 1 and fired[0].created
    [run] = runs_of(late_env, "report")
    assert run.run_id == fired[0].run_id
    assert late_env.fire_schedules() == []


def test_two_sweepers_on_one_store_start_one_run(late_env: TestEnvironment) -> None:
    # given: a second client (another sweeper's container) on the same store and queue
    other = Client(
        store=late_env.store,
        queue=late_env.queue,
        codec=late_env.codec,
        clock=late_env.clock,
        registry=late_env.registry,
    )
    late_env.clock.set(NINE + MINUTE)

    # when: both sweep, with overlapping lookback windows
    first = fire_due_schedules(late_env.client, late_env.registry, late_env.clock)
    second = fire_due_schedules(other, late_env.registry, late_env.clock, timedelta(hours=1))

    # then: the first started the run; the second found it by its idempotency key
    assert [handle.created for handle in first] == [True]
    assert second == []
    assert len(runs_of(late_env, "report")) == 1


def test_a_missed_sweep_within_the_lookback_fires_the_instant_once(
    late_env: TestEnvironment,
) -> None:
    # given: the sweeper was down from 08:59 to 09:04
    late_env.advance(timedelta(hours=9, minutes=4))
    assert runs_of(late_env, "report") == []

    # when: it sweeps again, twice
    late_env.sweep()
    late_env.sweep()
    late_env.run_until_idle()

    # then: the 09:00 run started, late, but with started_at at its scheduled instant
    [run] = runs_of(late_env, "report")
    assert run.created_at == NINE + timedelta(minutes=4)
    assert run.started_at == NINE
    late_env.advance(timedelta(minutes=30))
    assert late_env.get(run.run_id).result["started_at"] == NINE.isoformat()


def test_an_instant_older_than_the_lookback_is_skipped(late_env: TestEnvironment) -> None:
    # given: the sweeper was down past 09:05 (the lookback is 5 minutes)
    late_env.advance(timedelta(hours=9, minutes=5))

    # when / then: the 09:00 instant is not caught up...
    assert late_env.fire_schedules() == []
    assert late_env.sweep() == 0
    assert runs_of(late_env, "report") == []

    # ...and the next day's fires as usual
    late_env.advance(timedelta(days=1) - timedelta(minutes=5))
    late_env.sweep()
    [run] = runs_of(late_env, "report")
    assert run.started_at == NINE + timedelta(days=1)


def test_the_lookback_is_the_environments_to_choose(daily: TaskRegistry) -> None:
    lookback = timedelta(hours=1)
    with TestEnvironment(
        registry=daily, start=JAN_1, schedules=False, schedule_lookback=lookback
    ) as env:
        env.advance(timedelta(hours=9, minutes=30))
        [handle] = env.fire_schedules()
        assert env.get(handle.run_id).started_at == NINE


def test_no_instant_before_the_environments_start_fires(daily: TaskRegistry) -> None:
    with TestEnvironment(registry=daily, start=NINE + MINUTE) as env:
        assert env.fire_schedules() == []
        env.advance(timedelta(hours=1))
        assert runs_of(env, "report") == []
    with TestEnvironment(registry=daily, start=NINE) as env:  # an instant at the start fires
        env.advance(timedelta(0))
        [run] = runs_of(env, "report")
        assert run.started_at == NINE


# -- time zones and daylight saving time ----------------------------------------------------


def test_a_paris_morning_task_follows_summer_time(registry: TaskRegistry) -> None:
    @task(id="paris", cron="0 9 * * *", timezone="Europe/Paris", registry=registry)
    def paris(ctx: Context, payload: None) -> str:
        return ctx.run.started_at.astimezone(PARIS).isoformat()

    # Clocks go forward in Paris on Sunday 2030-03-31: 09:00 is 08:00 UTC before, 07:00 after.
    start = datetime(2030, 3, 30, tzinfo=UTC)
    with TestEnvironment(registry=registry, start=start) as env:
        env.advance(timedelta(days=2))
        runs = runs_of(env, "paris")

    assert [run.started_at for run in runs] == [
        datetime(2030, 3, 30, 8, tzinfo=UTC),
        datetime(2030, 3, 31, 7, tzinfo=UTC),
    ]
    assert [run.result for run in runs] == [
        "2030-03-30T09:00:00+01:00",
        "2030-03-31T09:00:00+02:00",
    ]


def test_a_time_skipped_or_repeated_by_dst_fires_once(registry: TaskRegistry) -> None:
    # 02:30 does not exist in Paris on 2030-03-31 and happens twice on 2030-10-27.
    schedule = CronSchedule.parse("30 2 * * *", "Europe/Paris")

    spring = list(
        schedule.instants(datetime(2030, 3, 30, tzinfo=UTC), datetime(2030, 4, 1, tzinfo=UTC))
    )
    autumn = list(
        schedule.instants(datetime(2030, 10, 26, tzinfo=UTC), datetime(2030, 10, 28, tzinfo=UTC))
    )

    # as Debian's cron does: the skipped time runs when the clock jumps (03:00 CEST) ...
    assert spring == [
        datetime(2030, 3, 30, 1, 30, tzinfo=UTC),  # 02:30 CET
        datetime(2030, 3, 31, 1, 0, tzinfo=UTC),  # 03:00 CEST
    ]
    # ... and the repeated one runs once, the first time round (02:30 CEST)
    assert autumn == [
        datetime(2030, 10, 26, 0, 30, tzinfo=UTC),
        datetime(2030, 10, 27, 0, 30, tzinfo=UTC),
    ]


def test_instants_are_each_fired_once_across_the_autumn_change(registry: TaskRegistry) -> None:
    @task(id="half-hourly", cron="*/30 * * * *", timezone="Europe/Paris", registry=registry)
    def half_hourly(ctx: Context, payload: None) -> None:
        return None

    start = datetime(2030, 10, 26, 23, 59, tzinfo=UTC)  # 01:59 CEST
    with TestEnvironment(registry=registry, start=start) as env:
        env.advance(timedelta(hours=3))  # to 03:59 CET, through 02:00-03:00 twice
        runs = runs_of(env, "half-hourly")

    # six real half hours, every one of them fired (the repeated hour too), none twice
    assert [run.started_at for run in runs] == [
        datetime(2030, 10, 27, 0, 0, tzinfo=UTC) + timedelta(minutes=30 * n) for n in range(6)
    ]


def test_next_firing_is_the_earliest_instant_of_any_task(registry: TaskRegistry) -> None:
    @task(id="a", cron="0 9 * * *", registry=registry)
    def a(ctx: Context, payload: None) -> None:
        return None

    @task(id="b", cron="@hourly", registry=registry)
    def b(ctx: Context, payload: None) -> None:
        return None

    assert next_firing(registry, NINE) == NINE + timedelta(hours=1)
    assert next_firing(TaskRegistry(), NINE) is None
    assert idempotency_key("a", NINE.astimezone(PARIS)) == "cron:a:2030-01-01T09:00:00+00:00"


def test_a_seconds_field_fires_within_the_minute(registry: TaskRegistry) -> None:
    @task(id="every-15s", cron="*/15 * * * * *", registry=registry)
    def every(ctx: Context, payload: None) -> None:
        return None

    with TestEnvironment(registry=registry, start=JAN_1) as env:
        env.advance(MINUTE)
        runs = runs_of(env, "every-15s")
    assert [run.started_at for run in runs] == [
        JAN_1 + timedelta(seconds=s) for s in (0, 15, 30, 45, 60)
    ]


# -- payloads --------------------------------------------------------------------------------


class ReportOptions(BaseModel):
    title: str = "Daily"
    rows: int = 10


class Needed(BaseModel):
    customer_id: str


def test_a_model_payload_with_defaults_is_filled_in(registry: TaskRegistry) -> None:
    @task(id="with-defaults", cron="0 9 * * *", registry=registry)
    def with_defaults(ctx: Context, payload: ReportOptions) -> str:
        return f"{payload.title}/{payload.rows}"

    with TestEnvironment(registry=registry, start=JAN_1) as env:
        env.advance(timedelta(hours=9))
        [run] = runs_of(env, "with-defaults")

    assert run.payload == {"title": "Daily", "rows": 10}
    assert run.result == "Daily/10"


def test_a_payload_that_needs_a_value_cannot_be_scheduled(registry: TaskRegistry) -> None:
    with pytest.raises(ValueError, match=r"'needy'.*payload must accept null"):

        @task(id="needy", cron="0 9 * * *", registry=registry)
        def needy(ctx: Context, payload: Needed) -> None:
            return None

    assert "needy" not in registry


# -- refused at decoration time --------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "timezone", "message"),
    [
        ("0 25 * * *", "UTC", r"task 'bad'.*bad cron expression '0 25 \* \* \*': Bad hour"),
        ("0 9 * *", "UTC", "task 'bad'.*Wrong number of fields"),
        ("every day", "UTC", "task 'bad'.*bad cron expression"),
        ("0 9 * * *", "Europe/Atlantis", "task 'bad'.*unknown time zone 'Europe/Atlantis'"),
        ("0 9 * * *", "", "task 'bad'.*unknown time zone"),
    ],
)
def test_a_bad_expression_or_zone_is_refused_naming_the_task(
    registry: TaskRegistry, cron: str, timezone: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):

        @task(id="bad", cron=cron, timezone=timezone, registry=registry)
        def bad(ctx: Context, payload: None) -> None:
            return None

    assert "bad" not in registry


def test_a_timezone_without_cron_is_refused(registry: TaskRegistry) -> None:
    with pytest.raises(ValueError, match=r"task 'zoned'.*give cron too"):
        task(id="zoned", timezone="Europe/Paris", registry=registry)


def test_started_at_given_to_trigger_must_be_aware(
    env: TestEnvironment, daily: TaskRegistry
) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        env.client.trigger("plain", started_at=datetime(2030, 1, 1, 9))
    handle = env.client.trigger("plain", started_at=NINE.astimezone(PARIS))
    assert env.get(handle.run_id).started_at == NINE
    assert env.get(handle.run_id).started_at.tzinfo is UTC  # type: ignore[union-attr]


# -- the deployed sweeper, and DynamoDB ---------------------------------------------------


def test_the_runtime_sweep_fires_schedules_and_counts_them(daily: TaskRegistry) -> None:
    clock = VirtualClock(NINE + timedelta(minutes=2))
    store = MemoryRunStore()
    runtime = Runtime.from_parts(
        store=store,
        queue=MemoryWakeQueue(clock),
        blobs=MemoryBlobStore(),
        clock=clock,
        registry=daily,
        settings=Settings(),
    )
    metrics = Metrics(namespace="durable-test", service="durable")

    runtime.sweep(metrics)
    runtime.sweep(metrics)

    [run] = runtime.client.list(task_id="report").runs
    assert run.started_at == NINE
    assert metrics.metric_set["schedules_fired"]["Value"] == [1, 0]
    metrics.clear_metrics()


def test_the_runtime_lookback_comes_from_settings(
    daily: TaskRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_SCHEDULE_LOOKBACK_SECONDS", "60")
    clock = VirtualClock(NINE + timedelta(minutes=2))
    runtime = Runtime.from_parts(
        store=MemoryRunStore(),
        queue=MemoryWakeQueue(clock),
        blobs=MemoryBlobStore(),
        clock=clock,
        registry=daily,
    )
    assert runtime.settings.schedule_lookback == MINUTE
    runtime.sweep()
    assert runtime.client.list(task_id="report").runs == []


def test_a_firing_on_dynamodb_keeps_its_scheduled_start(daily: TaskRegistry) -> None:
    with TestEnvironment("moto", registry=daily, start=JAN_1, schedules=False) as env:
        env.advance(timedelta(hours=9, minutes=3))
        env.sweep()
        env.sweep()  # the idempotency claim in DynamoDB stops a second run
        env.run_until_idle()
        env.advance(timedelta(minutes=30))
        [run] = runs_of(env, "report")

    assert run.status is RunStatus.COMPLETED
    assert run.started_at == NINE  # the lease kept it (if_not_exists)
    assert run.result == {"started_at": NINE.isoformat(), "day": "2030-01-01"}
