"""In-process moto serves one request at a time (`durable.testing.serialize_moto_requests`):
a request arriving while another is inside moto waits for it, so the runtime's thread
pools cannot race on moto's dicts."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.sqs.models import SQSBackend

from durable.testing import serialize_moto_requests


@pytest.fixture
def sqs() -> Iterator[object]:
    serialize_moto_requests()
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_a_second_request_waits_for_the_one_inside_moto(
    sqs: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = threading.Event()
    release = threading.Event()
    original = SQSBackend.list_queues

    # Written inside moto (under its lock): the order requests went in and came out.
    order: list[str] = []

    def slow_list_queues(self: SQSBackend, *args: object, **kwargs: object) -> object:
        name = threading.current_thread().name
        order.append(f"{name} in")
        if name == "first":
            inside.set()
            release.wait(timeout=10)
        try:
            return original(self, *args, **kwargs)
        finally:
            order.append(f"{name} out")

    monkeypatch.setattr(SQSBackend, "list_queues", slow_list_queues)

    def call(name: str) -> None:
        sqs.list_queues()  # type: ignore[attr-defined]

    first = threading.Thread(target=call, args=("first",), name="first")
    first.start()
    assert inside.wait(timeout=10)
    second = threading.Thread(target=call, args=("second",), name="second")
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive()  # held at moto's door while the first is inside
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert order == ["first in", "first out", "second in", "second out"]
