"""The `durable dev` console on real Powertools output: records, EMF blobs, tracebacks.

The lines are produced the way the worker processes produce them (a Powertools `Logger`
with the Lambda context injected, `Metrics` flushing EMF), then parsed and rendered.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from durable.local.console import (
    Console,
    OutputReader,
    colour_wanted,
    entry,
    in_process_source,
    parse_line,
    render_json,
    render_text,
    traceback_location,
)
from durable.local.containers import InvocationResult
from durable.local.lambda_context import LocalLambdaContext
from durable.local.poller import _describe

RUN_ID = "run_01a22a59095ca0169aa50092de24f8af"
_SERVICES = itertools.count()
RUN_KEYS = {"run_id": RUN_ID, "task_id": "process-order", "attempt": 1}


def powertools_lines(log: Any) -> list[str]:
    """What a Powertools logger with the Lambda context injected prints for `log(logger)`."""
    stream = io.StringIO()
    # A service of its own each time: Powertools configures a service's logger only once.
    logger = Logger(service=f"console-test-{next(_SERVICES)}", stream=stream)
    logger.inject_lambda_context(lambda event, context: log(logger), clear_state=True)(
        {}, LocalLambdaContext("durable-worker", 5.0)
    )
    return stream.getvalue().splitlines()


def emf_line(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics = Metrics(namespace="durable", service="durable")
    metrics.add_metric(name="StepsRun", unit=MetricUnit.Count, value=3)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    metrics.flush_metrics()
    monkeypatch.undo()
    return out.getvalue().strip()


def test_a_record_becomes_one_line_without_the_lambda_context() -> None:
    [line] = powertools_lines(
        lambda logger: logger.info("order processed", **RUN_KEYS, order_id="o1", total=12.5)
    )
    assert '"function_arn"' in line and '"cold_start"' in line  # what the worker prints

    text = render_text(parse_line(line, "worker"))

    assert text is not None
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d worker  INFO  {RUN_ID} process-order order processed "
        r"attempt=1 order_id=o1 total=12.5",
        text,
    ), text


def test_debug_records_and_verbose_show_where_they_were_logged() -> None:
    [line] = powertools_lines(lambda logger: logger.info("hello"))
    record = parse_line(line, "api")

    assert "at " not in (render_text(record) or "")
    assert re.search(r" at \S+:\d+$", render_text(record, verbose=True) or "")


def test_a_traceback_shrinks_to_its_last_line_and_location() -> None:
    def fail(logger: Logger) -> None:
        try:
            {}["missing"]
        except KeyError:
            logger.exception("charge failed", **RUN_KEYS)

    [line] = powertools_lines(fail)
    record = parse_line(line, "worker")

    text = render_text(record) or ""
    assert "\n" not in text
    assert text.endswith(f"charge failed attempt=1 | KeyError: 'missing' at {_here()}"), text
    verbose = render_text(record, verbose=True) or ""
    assert "Traceback (most recent call last)" in verbose
    assert verbose.splitlines()[0] == text
    assert "Traceback (most recent call last)" in json.loads(render_json(record))["exception"]


def test_emf_metric_blobs_are_kept_out_of_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    line = emf_line(monkeypatch)
    assert '"CloudWatchMetrics"' in line

    record = parse_line(line, "worker")

    assert render_text(record) is None
    as_json = json.loads(render_json(record))
    assert as_json["source"] == "worker"
    assert as_json["StepsRun"] == [3.0]


def test_json_keeps_every_key_of_a_record() -> None:
    [line] = powertools_lines(lambda logger: logger.warning("slow", **RUN_KEYS, ms=900))
    original = json.loads(line)

    as_json = json.loads(render_json(parse_line(line, "worker")))

    assert as_json["source"] == "worker"
    assert set(original) <= set(as_json)
    for key in ("level", "message", "run_id", "task_id", "ms", "function_arn", "cold_start"):
        assert as_json[key] == original[key]


def test_the_stacks_own_lines_have_the_same_json_fields() -> None:
    [line] = powertools_lines(lambda logger: logger.info("order processed", **RUN_KEYS))
    record = json.loads(render_json(parse_line(line, "worker")))
    own = json.loads(render_json(entry("api", "POST /tasks/x/runs 202 12ms", data={"status": 202})))

    assert {"timestamp", "source", "level", "message"} <= set(own) & set(record)
    assert own["source"] == "api" and own["status"] == 202


def test_lines_that_are_not_json_pass_through_with_their_source() -> None:
    text = render_text(parse_line("just a print() from a task\n", "worker"))
    moto = render_text(parse_line("moto    replaying a journaled request failed", "moto"))

    assert re.fullmatch(r"\d\d:\d\d:\d\d worker        just a print\(\) from a task", text or "")
    assert (moto or "").endswith("moto          replaying a journaled request failed")
    assert render_text(parse_line('{"not": "closed"', "worker")) is not None


def test_colours_only_on_a_terminal_without_no_color() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    record = entry("worker", "(start) ok 0.50s", run_id=RUN_ID, outcome="ok")

    assert "\x1b[" in (render_text(record, colour=True) or "")
    assert "\x1b[" not in (render_text(record) or "")
    assert colour_wanted(Terminal(), {})
    assert not colour_wanted(Terminal(), {"NO_COLOR": "1"})
    assert not colour_wanted(io.StringIO(), {})


def test_an_invocation_line_keeps_its_shape() -> None:
    message: Any = {
        "MessageId": "m-1",
        "Body": json.dumps({"run_id": RUN_ID, "reason": "start"}),
        "Attributes": {"ApproximateReceiveCount": "2"},
    }
    ok = render_text(_describe(message, InvocationResult("ok", 0.5), succeeded=True)) or ""
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "/work/src/tasks/orders.py", line 12, in charge\n'
        "    raise ValueError('card declined')\n"
        "ValueError: card declined\n"
    )
    raised = _describe(message, InvocationResult("error", 0.25, detail=traceback), False)

    assert ok.endswith(f"worker  INFO  {RUN_ID} (start) delivery #2 ok 0.50s")
    assert (render_text(raised) or "").endswith(
        f"{RUN_ID} (start) delivery #2 raised after 0.25s; SQS will deliver it again"
        " | ValueError: card declined at /work/src/tasks/orders.py:12"
    )
    assert json.loads(render_json(raised))["exception"] == traceback


def test_traceback_location_is_the_innermost_frame() -> None:
    text = 'Traceback:\n  File "a.py", line 1, in f\n  File "b.py", line 7, in g\nE: x\n'

    assert traceback_location(text) == "b.py:7"
    assert traceback_location("no frames here") == ""


def test_the_console_writes_whole_lines_from_many_threads() -> None:
    out = io.StringIO()
    console = Console("json", stream=out)
    writer = console.writer(in_process_source)

    def log(index: int) -> None:
        console.feed("worker", f'{{"level":"INFO","message":"m{index}"}}')

    threads = [threading.Thread(target=log, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.write('{"level":"INFO","message":"from the api')
    writer.write(' handler"}\nplain')
    console.emit("12:00:00 sweeper re-enqueued 1 overdue run(s)")

    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["message"] for line in lines[:20]) == sorted(f"m{i}" for i in range(20))
    assert lines[20]["source"] == "api" and lines[20]["message"] == "from the api handler"
    assert lines[21]["source"] == "sweeper"
    assert lines[21]["message"] == "re-enqueued 1 overdue run(s)"


def test_a_process_output_is_drained_to_its_last_line() -> None:
    # given a process that writes more than a pipe holds, then dies mid-line
    script = (
        "import os, sys\n"
        "for i in range(20000): print(f'line {i} ' + 'x' * 40)\n"
        "sys.stdout.write('last words without a newline'); sys.stdout.flush()\n"
        "os._exit(3)\n"
    )
    read_end, write_end = os.pipe()
    process = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=write_end)
    os.close(write_end)
    seen: list[str] = []

    # when its output is read by an OutputReader
    reader = OutputReader(read_end, "worker", lambda source, line: seen.append(line))
    assert process.wait(timeout=30) == 3
    reader.join(10)

    # then every line arrived, the unterminated last one too
    assert len(seen) == 20001
    assert seen[-1] == "last words without a newline"


def test_settle_waits_until_what_was_written_is_fed() -> None:
    read_end, write_end = os.pipe()
    seen: list[str] = []

    def slow_feed(source: str, line: str) -> None:
        time.sleep(0.05)
        seen.append(line)

    reader = OutputReader(read_end, "worker", slow_feed)
    os.write(write_end, b"one\ntwo\n")
    time.sleep(0.01)
    reader.settle(2.0)
    assert seen == ["one", "two"]
    os.close(write_end)
    reader.join(2)


def _here() -> str:
    return "tests/unit/test_console.py:" + str(_line_of('{}["missing"]'))


def _line_of(text: str) -> int:
    with open(__file__, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if text in line and "_line_of" not in line:
                return number
    raise AssertionError(text)
