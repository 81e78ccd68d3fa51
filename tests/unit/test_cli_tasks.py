"""`durable tasks [TASK_ID] [--json]` over HTTP, against the API served by the dev stack's
gateway in this process (on the memory backend): the table, one task in full, the API's
JSON, and exit code 2 with a message on bad use."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator

import pytest
from tests.unit.test_api_tasks import START, make_registry

from durable.api import handle
from durable.cli import main
from durable.cli.tasks import format_tasks
from durable.local.gateway import LocalGateway
from durable.testing import TestEnvironment


@pytest.fixture
def url() -> Iterator[str]:
    with TestEnvironment(registry=make_registry(), start=START) as env:
        gateway = LocalGateway(
            ("127.0.0.1", 0), lambda event, context: handle(event, context, env.client)
        )
        gateway.serve_in_thread()
        try:
            yield gateway.url
        finally:
            gateway.shutdown()
            gateway.server_close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_has_a_line_per_task(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "tasks", "--url", url)

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "TASK",
        "VERSION",
        "RETRY",
        "TIMEOUT",
        "SCHEDULE",
        "ASYNC",
        "PAYLOAD",
        "DESCRIPTION",
    ]
    rows = {line.split("  ")[0].strip(): line for line in lines[1:5]}
    assert set(rows) == {"a task/with odd ch@rs", "anything", "report", "ship-order"}
    ship = rows["ship-order"]
    assert "5 tries 2s..2m ×3" in ship and "1h" in ship
    assert "order_id, items" in ship
    assert ship.endswith("Ship an order: reserve, pack and hand to the carrier.")
    assert "30 9 * * * Europe/Paris" in rows["report"] and "title?" in rows["report"]
    assert "yes" in rows["anything"] and "any JSON" in rows["anything"]
    assert "integer" in rows["a task/with odd ch@rs"]
    assert lines[-1] == "more: durable tasks TASK_ID (schemas and an example payload)"


def test_json_is_what_the_api_answers(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "--url", url, "--json")

    assert code == 0
    listing = json.loads(out)
    assert [item["task_id"] for item in listing["tasks"]][-1] == "ship-order"
    assert listing["tasks"][-1]["retry"]["non_retryable"] == ["ValueError", "KeyError"]


def test_one_task_in_full(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "ship-order", "--url", url)

    assert code == 0
    assert "description  Ship an order: reserve, pack and hand to the carrier." in out
    assert "retry        5 tries 2s..2m ×3, never ValueError, KeyError" in out
    assert "timeout      1h" in out
    assert '"$ref": "#/$defs/LineItem"' in out  # the payload schema
    assert '"shipped_at"' in out  # the result schema
    # the example, as a command that can be pasted
    command = out.splitlines()[-1].strip()
    words = shlex.split(command)
    assert words[:3] == ["durable", "trigger", "ship-order"]
    assert json.loads(words[4]) == {"order_id": "o-1", "items": [{"sku": "A", "quantity": 2}]}


def test_one_task_by_an_odd_id_as_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tasks", "a task/with odd ch@rs", "--json", "--url", url)

    assert code == 0
    assert json.loads(out)["payload_example"] == 0


def test_a_scheduled_task_in_full_shows_its_next_instant(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "tasks", "report", "--url", url)

    assert code == 0
    assert "schedule     30 9 * * * Europe/Paris (next 2030-01-02 08:30:00 UTC)" in out


def test_an_unknown_task_is_exit_2_with_the_api_message(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "tasks", "nope", "--url", url)

    assert (code, out) == (2, "")
    assert err == "durable tasks: no task registered with id 'nope' (404 unknown_task)\n"


def test_no_server_is_exit_2_with_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tasks", "--url", "http://127.0.0.1:9")

    assert code == 2
    assert "cannot reach the durable API at http://127.0.0.1:9" in err
    assert "durable dev" in err


@pytest.mark.parametrize("args", [["tasks", "--bogus"], ["tasks", "a", "b"]])
def test_bad_use_is_exit_2_with_usage(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: durable" in err
    assert f"error: unrecognized arguments: {args[-1]}" in err


def test_the_table_leaves_out_descriptions_when_no_task_has_one() -> None:
    table = format_tasks([{"task_id": "t", "payload_schema": {"type": "null"}}])

    assert table.splitlines()[0].split()[-1] == "PAYLOAD"
    assert table.splitlines()[1].split() == ["t", "-", "-", "-", "-", "no", "null"]
