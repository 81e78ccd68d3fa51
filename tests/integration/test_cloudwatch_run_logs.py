"""`CloudWatchRunLogSource` on moto's CloudWatch Logs: a run's lines, exactly its own, paged
with a cursor across equal timestamps, and only the newer ones for a follower."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from durable.runlogs import InvalidLogCursorError, LogPage, cloudwatch
from durable.runlogs.cloudwatch import CloudWatchRunLogSource, filter_pattern

REGION = "us-east-1"

GROUP = "/aws/lambda/durable-worker"
T0 = int(datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp() * 1000)
RUN = "run_0123456789abcdef0123456789abcdef"
CHILD = RUN + ".1.2.0"


def record(run_id: str, message: str, **keys: Any) -> str:
    return json.dumps(
        {"level": "INFO", "message": message, "service": "durable", "run_id": run_id, **keys}
    )


@pytest.fixture
def logs(aws_credentials: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName=GROUP)
        yield client


def put(client: Any, stream: str, events: list[tuple[int, str]]) -> None:
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    client.put_log_events(
        logGroupName=GROUP,
        logStreamName=stream,
        logEvents=[
            {"timestamp": millis, "message": message}
            for millis, message in sorted(events, key=lambda event: event[0])  # stable
        ],
    )


def read_all(source: CloudWatchRunLogSource, run_id: str, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(1000):
        page = source.read(run_id, cursor=cursor, limit=limit)
        seen += [line.message for line in page.lines]
        cursor = page.next_cursor
        if not page.more:
            return seen
    raise AssertionError("the pages never ended")


def test_a_run_reads_its_own_lines_only(logs: Any) -> None:
    put(
        logs,
        "2026/11/30/[$LATEST]aaaa",
        [
            (T0, "START RequestId: 1 Version: $LATEST"),
            (T0 + 1, record(RUN, "parent line", attempt=1, step="charge", order="o-1")),
            (T0 + 2, record(CHILD, "child line")),
            (T0 + 3, record("run_other", f"mentions {RUN}")),
            (T0 + 4, json.dumps({"_aws": {"CloudWatchMetrics": []}, "runs": 1})),
            (T0 + 5, "not json at all " + RUN),
            (T0 + 6, record(RUN, "stdlib line", logger="tasks.orders", level="WARNING")),
        ],
    )
    source = CloudWatchRunLogSource(GROUP, logs)

    page = source.read(RUN)

    assert [(line.message, line.logger, line.step) for line in page.lines] == [
        ("parent line", "durable", "charge"),
        ("stdlib line", "tasks.orders", None),
    ]
    assert page.lines[0].data == {"order": "o-1"}
    assert page.lines[0].attempt == 1
    assert page.lines[0].at == datetime.fromtimestamp((T0 + 1) / 1000, tz=UTC)
    assert [line.message for line in source.read(CHILD).lines] == ["child line"]
    assert filter_pattern(CHILD) == '{ $.run_id = "' + CHILD + '" }'


def test_pages_cover_every_line_once_across_equal_timestamps(logs: Any) -> None:
    # 240 lines of the run, 40 per millisecond, interleaved with another run's, in 2 streams
    ours = [(T0 + number // 40, record(RUN, f"line {number}")) for number in range(240)]
    theirs = [(T0 + number // 40, record(CHILD, f"child {number}")) for number in range(240)]
    put(logs, "2026/11/30/[$LATEST]aaaa", ours[:120] + theirs[:120])
    put(logs, "2026/11/30/[$LATEST]bbbb", theirs[120:] + ours[120:])
    source = CloudWatchRunLogSource(GROUP, logs)

    got = read_all(source, RUN, limit=17)

    assert sorted(got, key=lambda text: int(text.split()[1])) == [
        f"line {number}" for number in range(240)
    ]
    assert len(got) == len(set(got)) == 240
    # in timestamp order: every line of a millisecond before the next millisecond's
    assert [int(text.split()[1]) // 40 for text in got] == sorted(
        int(text.split()[1]) // 40 for text in got
    )


def test_a_follower_gets_only_newer_lines(logs: Any) -> None:
    put(logs, "2026/11/30/[$LATEST]aaaa", [(T0, record(RUN, "first")), (T0, record(RUN, "twin"))])
    source = CloudWatchRunLogSource(GROUP, logs)
    first = source.read(RUN)
    nothing = source.read(RUN, cursor=first.next_cursor)
    # a line of the same millisecond as the last one returned, then later ones
    put(logs, "2026/11/30/[$LATEST]bbbb", [(T0, record(RUN, "late twin"))])
    put(logs, "2026/11/30/[$LATEST]aaaa", [(T0 + 5, record(RUN, "second"))])
    then = source.read(RUN, cursor=nothing.next_cursor)

    assert [line.message for line in first.lines] == ["first", "twin"]
    assert nothing.lines == [] and nothing.next_cursor
    assert [line.message for line in then.lines] == ["late twin", "second"]
    assert source.read(RUN, cursor=then.next_cursor).lines == []


def test_a_first_read_searches_from_the_runs_creation(logs: Any) -> None:
    created = datetime.fromtimestamp(T0 / 1000, tz=UTC)
    old = T0 - int(timedelta(hours=1).total_seconds() * 1000)
    put(logs, "2026/11/30/[$LATEST]aaaa", [(old, record(RUN, "an hour early"))])
    put(logs, "2026/11/30/[$LATEST]aaaa", [(T0 + 10, record(RUN, "in the run"))])
    source = CloudWatchRunLogSource(GROUP, logs)

    page: LogPage = source.read(RUN, since=created)

    assert [line.message for line in page.lines] == ["in the run"]


def test_a_group_nothing_has_logged_to_yet_reads_as_no_lines(aws_credentials: None) -> None:
    with mock_aws():
        source = CloudWatchRunLogSource("/aws/lambda/never", region=REGION)
        page = source.read(RUN)
    assert page.lines == [] and page.next_cursor


def test_a_malformed_cursor_is_refused_before_any_call(logs: Any) -> None:
    source = CloudWatchRunLogSource(GROUP, logs)
    with pytest.raises(InvalidLogCursorError):
        source.read(RUN, cursor="!!")
    assert source.calls == 0


def test_a_search_cut_short_says_there_is_more(logs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # stock moto hands the reader every event; 300 of other runs come first
    put(
        logs,
        "2026/11/30/[$LATEST]aaaa",
        [(T0 + number, record(CHILD, f"child {number}")) for number in range(300)]
        + [(T0 + 400, record(RUN, "at last"))],
    )
    monkeypatch.setattr(cloudwatch, "MAX_CALLS", 2)
    source = CloudWatchRunLogSource(GROUP, logs)

    pages: list[LogPage] = [source.read(RUN, limit=10)]
    while pages[-1].more:
        pages.append(source.read(RUN, cursor=pages[-1].next_cursor, limit=10))

    # each read scanned 2 pages of 10 events and stopped, saying so, until it got there
    assert [len(page.lines) for page in pages[:-1]] == [0] * (len(pages) - 1)
    assert [line.message for line in pages[-1].lines] == ["at last"]
    assert len(pages) > 10
