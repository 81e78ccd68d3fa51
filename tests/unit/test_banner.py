"""The dev banner's curl examples: a payload each task accepts, made from its annotation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from durable import Context, TaskRegistry, task
from durable.local.banner import example_payload


class Order(BaseModel):
    order_id: str
    quantity: int = Field(gt=0)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (Any, {}),
        (str, "example"),
        (int, 1),
        (dict, {}),
        (list[str], []),
        (Order, {"order_id": "example", "quantity": 1}),
    ],
)
def test_every_task_gets_a_payload_it_accepts(annotation: Any, expected: Any) -> None:
    registry = TaskRegistry()

    def body(ctx: Context, payload: Any) -> None:
        return None

    body.__annotations__["payload"] = annotation
    task(id="t", registry=registry)(body)

    payload = example_payload(registry.get("t"))

    assert payload == expected
    registry.get("t").validate_payload(payload)  # accepted as it is
