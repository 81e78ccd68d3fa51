"""The sweeper never re-sends a run whose message only waits in the queue's backlog.

A queued run is overdue as soon as its trigger is `grace` old; when the workers are behind,
its message is still in the queue. Re-sending it then doubled the work in `durable dev`
(1,039 re-sends for 1,000 runs). The sweeper now re-sends such a run only when the queue
holds no waiting message (its own cannot be among them), or once it is `BACKLOG_PATIENCE`
late; a run whose invocation died, or a finished run with follow-ups, is re-sent at once.
"""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from durable import Context, RunStatus, TaskRegistry, task
from durable.queues.sqs import SQSWakeQueue
from durable.records import WakeReason, WakeUp
from durable.services.sweeper import BACKLOG_PATIENCE, sweep
from durable.testing import TestEnvironment

GRACE = timedelta(seconds=3)


def let_time_pass(env: TestEnvironment, delta: timedelta) -> None:
    """Move the clock without delivering anything: the workers are behind."""
    env.clock.set(env.now() + delta)


@pytest.fixture
def env(registry: TaskRegistry) -> TestEnvironment:
    @task(id="three-steps", registry=registry)
    def three_steps(ctx: Context, payload: int) -> int:
        return sum(ctx.step(f"step-{n}", lambda n=n: n * payload) for n in range(3))

    return TestEnvironment(registry=registry)


def test_queued_runs_whose_messages_wait_in_a_backlog_are_not_sent_again(
    env: TestEnvironment,
) -> None:
    # given a thousand triggered runs whose messages wait: the workers are behind
    with env:
        handles = [env.trigger("three-steps", n) for n in range(1000)]
        let_time_pass(env, timedelta(seconds=30))
        sent_before = env.queue.sent

        # when the sweeper runs while the backlog is there
        resent = sweep(env.store, env.queue, env.clock, grace=GRACE)

        # then nothing is sent again, and every run completes from its own message
        assert resent == 0
        assert env.queue.sent == sent_before
        env.run_until_idle()
        assert {env.get(h.run_id).status for h in handles} == {RunStatus.COMPLETED}


def test_a_queued_run_whose_message_was_lost_is_sent_again_once_the_queue_is_empty(
    env: TestEnvironment,
) -> None:
    with env:
        # given a run whose message is lost (a crash between the write and the send)...
        lost = env.trigger("three-steps", 1)
        assert env.queue.pop_due(env.now()) is not None
        # ... and another one, queued behind a backlog
        waiting = env.trigger("three-steps", 2)
        let_time_pass(env, timedelta(seconds=30))

        # when the sweeper runs with the backlog, then with the queue empty
        assert sweep(env.store, env.queue, env.clock, grace=GRACE) == 0
        env.run_until_idle()  # the backlog drains: the waiting run completes
        assert env.get(waiting.run_id).status is RunStatus.COMPLETED
        let_time_pass(env, timedelta(seconds=30))
        resent = sweep(env.store, env.queue, env.clock, grace=GRACE)

        # then the lost run is sent again, and completes
        assert resent == 1
        env.run_until_idle()
        assert env.get(lost.run_id).status is RunStatus.COMPLETED


def test_a_run_late_beyond_patience_is_sent_again_even_with_a_backlog(
    env: TestEnvironment,
) -> None:
    with env:
        lost = env.trigger("three-steps", 1)
        assert env.queue.pop_due(env.now()) is not None  # its message is gone
        env.queue.send(WakeUp("run_someone_else", WakeReason.START))  # a backlog remains
        let_time_pass(env, BACKLOG_PATIENCE + timedelta(seconds=1))

        assert sweep(env.store, env.queue, env.clock, grace=GRACE) == 1
        env.run_until_idle()
        assert env.get(lost.run_id).status is RunStatus.COMPLETED


def test_a_dead_invocation_is_swept_at_once_whatever_the_backlog(env: TestEnvironment) -> None:
    with env:
        # given a run leased by an invocation that died (its lease has run out)
        run = env.trigger("three-steps", 1)
        assert env.queue.pop_due(env.now()) is not None
        now = env.now()
        env.store.acquire_lease(run.run_id, "dead-owner", now, now + timedelta(seconds=5))
        env.queue.send(WakeUp("run_someone_else", WakeReason.START))  # a backlog
        let_time_pass(env, timedelta(seconds=30))

        # then it is re-sent though the queue has a backlog
        assert sweep(env.store, env.queue, env.clock, grace=GRACE) == 1


def test_sqs_counts_the_messages_waiting_for_a_consumer() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
        queue = SQSWakeQueue(url, client=sqs)
        assert queue.waiting() == 0

        queue.send(WakeUp("run_a", WakeReason.START))
        queue.send(WakeUp("run_b", WakeReason.START))
        queue.send(WakeUp("run_c", WakeReason.TIMER, token="t"), delay=timedelta(minutes=5))
        assert queue.waiting() == 2  # the delayed one is not waiting yet

        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
        assert len(received["Messages"]) == 1
        assert queue.waiting() == 1  # nor is one a consumer holds
