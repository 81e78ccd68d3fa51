"""End to end over HTTP: fan-out on `durable dev`. `price-catalog` maps `price-sku` child
runs over a catalog (a few unknown SKUs tolerated), and a map whose children sleep is
cancelled while they do: its children end CANCELLED and no further child starts.

The pricing fake is deterministic, so this process computes the expected prices itself.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from tests.e2e.devserver import FAKES_DIR

from tasks.fakes import pricing

if TYPE_CHECKING:
    from tests.e2e.conftest import WaitFor

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def server_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the fakes' files where the session's dev servers keep them."""
    monkeypatch.setenv("DURABLE_FAKES_DIR", str(FAKES_DIR))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def trigger(api: httpx.Client, task_id: str, payload: object) -> str:
    response = api.post(f"/tasks/{task_id}/runs", json={"payload": payload})
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def children_of(api: httpx.Client, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """The run's children, in index order (a batch child's id ends with its index)."""
    response = api.get("/runs", params={"task_id": task_id, "limit": 1000})
    assert response.status_code == 200, response.text
    runs = [run for run in response.json()["runs"] if run["parent_run_id"] == run_id]
    # The list carries summaries: each child's payload and result come with the run itself.
    runs = [api.get(f"/runs/{run['run_id']}").json() for run in runs]
    return sorted(runs, key=lambda run: int(run["run_id"].rsplit(".", 1)[1]))


def history_kinds(api: httpx.Client, run_id: str) -> list[tuple[str, str]]:
    response = api.get(f"/runs/{run_id}/history")
    assert response.status_code == 200, response.text
    return [(entry["kind"], entry["name"]) for entry in response.json()["history"]]


def test_a_catalog_is_priced_by_child_runs_and_tolerates_unknown_skus(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    prefix = unique("sku")
    skus = [f"{prefix}-{i}" for i in range(30)]
    for i in (4, 17, 25):
        skus[i] = f"discontinued-{prefix}-{i}"  # the pricing service does not know these
    run_id = trigger(api, "price-catalog", {"catalog_id": unique("catalog"), "skus": skus})

    run = wait_for(run_id, timeout=60)

    assert run["status"] == "COMPLETED", run
    known = [sku for sku in skus if not sku.startswith("discontinued")]
    prices = {sku: pricing.quote(sku, 1)["unit_cents"] for sku in known}
    assert run["result"]["total_cents"] == sum(prices.values())
    assert run["result"]["priced"] == 27
    assert run["result"]["failed"] == [skus[4], skus[17], skus[25]]
    children = children_of(api, run_id, "price-sku")
    assert [child["payload"] for child in children] == skus  # child i priced SKU i
    for child in children:
        if child["payload"] in prices:
            assert (child["status"], child["result"]) == ("COMPLETED", prices[child["payload"]])
        else:
            assert child["status"] == "FAILED", child
            assert child["error"]["type"] == "UnknownSku"
    assert history_kinds(api, run_id) == [
        ("batch_started", "map:price-sku"),
        ("batch_completed", "map:price-sku"),
    ]


def test_cancelling_a_map_cancels_its_sleeping_children(
    api: httpx.Client, wait_for: WaitFor
) -> None:
    # given: five naps of a minute, three at a time; the first three children sleep
    payload = {"naps": 5, "seconds": 60, "max_concurrency": 3}
    run_id = trigger(api, "e2e-map-naps", payload)
    wait_for(run_id, {"WAITING"})
    deadline = time.monotonic() + 20
    while True:
        children = children_of(api, run_id, "e2e-sleep")
        if len(children) == 3 and {child["status"] for child in children} == {"WAITING"}:
            break
        assert time.monotonic() < deadline, children
        time.sleep(0.2)
    assert api.get(f"/runs/{run_id}").json()["waiting_for"] == "batch:1:0"

    # when
    response = api.post(f"/runs/{run_id}/cancel")

    # then: the parent and its sleeping children are cancelled; the last two never start
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    for child in children:
        ended = wait_for(child["run_id"], timeout=10)
        assert ended["status"] == "CANCELLED", ended
    time.sleep(1)  # time enough for a wrongly started successor to show up
    children = children_of(api, run_id, "e2e-sleep")
    assert [child["run_id"].rsplit(".", 1)[1] for child in children] == ["0", "1", "2"]
    assert {child["status"] for child in children} == {"CANCELLED"}
    assert wait_for(run_id)["status"] == "CANCELLED"
