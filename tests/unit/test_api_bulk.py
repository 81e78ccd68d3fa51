"""`POST /bulk` and `GET /bulk/{job_id}` in process (API Gateway events, memory backend), and
the single cancel route's audit entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.unit.test_api import Api

from durable import Context, TaskRegistry, task
from durable.records import CheckpointKind
from durable.services.audit import action_details
from durable.testing import TestEnvironment

CALLER = {"x-durable-caller": "cli ana@laptop"}


def _registry() -> TaskRegistry:
    registry = TaskRegistry()

    @task(id="order", registry=registry)
    def order(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("approve")

    @task(id="other", registry=registry)
    def other(ctx: Context, payload: int) -> Any:
        return ctx.wait_for_event("approve")

    return registry


@pytest.fixture
def env() -> Iterator[TestEnvironment]:
    with TestEnvironment(registry=_registry()) as environment:
        yield environment


@pytest.fixture
def api(env: TestEnvironment) -> Api:
    return Api(env.client)


def _actions(env: TestEnvironment, run_id: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (entry.name, action_details(entry))
        for entry in env.store.load_history(run_id)
        if entry.kind is CheckpointKind.RUN_ACTION
    ]


def test_a_bulk_cancel_over_http_runs_in_the_background(api: Api, env: TestEnvironment) -> None:
    orders = [env.trigger("order", n).run_id for n in range(6)]
    other = env.trigger("other", 0).run_id
    env.run_until_idle()

    reply = api.post(
        "/bulk",
        {"action": "cancel", "filter": {"task_id": "order", "status": "WAITING"}},
        headers=CALLER,
    )
    assert reply.status == 202, reply.text
    job = reply.json
    assert (job["state"], job["done"], job["matched"], job["action"]) == (
        "running",
        False,
        0,
        "cancel",
    )
    assert job["by"] == "unverified:cli ana@laptop"
    assert job["filter"]["task_id"] == "order" and job["filter"]["status"] == "WAITING"

    env.run_until_idle()
    reply = api.get(f"/bulk/{job['job_id']}")
    assert reply.status == 200
    done = reply.json
    assert (done["state"], done["done"], done["matched"], done["acted"], done["skipped"]) == (
        "completed",
        True,
        6,
        6,
        0,
    )
    assert done["finished_at"] is not None and done["errors"] == 0
    for run_id in orders:
        assert api.get(f"/runs/{run_id}").json["status"] == "CANCELLED"
        assert _actions(env, run_id) == [
            ("cancel", {"by": "unverified:cli ana@laptop", "bulk": job["job_id"]})
        ]
    assert api.get(f"/runs/{other}").json["status"] == "WAITING"


def test_the_single_cancel_route_records_who_cancelled(api: Api, env: TestEnvironment) -> None:
    run_id = env.trigger("order", 1).run_id
    env.run_until_idle()
    reply = api.post(f"/runs/{run_id}/cancel", headers=CALLER)
    assert reply.status == 200 and reply.json["status"] == "CANCELLED"
    assert _actions(env, run_id) == [("cancel", {"by": "unverified:cli ana@laptop"})]
    # the run's history and its page's timeline still read with the entry in its log
    history = api.get(f"/runs/{run_id}/history")
    assert history.status == 200
    assert [entry["kind"] for entry in history.json["history"]][-1] == "run_action"
    assert api.get(f"/runs/{run_id}/timeline").status == 200
    again = api.post(f"/runs/{run_id}/cancel", headers=CALLER)
    assert again.status == 409 and again.error_code == "run_finished"
    assert len(_actions(env, run_id)) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"action": "delete", "filter": {"task_id": "order"}}, 422, "unknown_bulk_action"),
        ({"action": "retry", "filter": {}}, 422, "bulk_filter_required"),
        ({"action": "cancel", "filter": {}}, 422, "bulk_filter_required"),
        ({"action": "cancel"}, 422, "bulk_filter_required"),
        ({"action": "cancel", "filter": {"all": False}}, 422, "bulk_filter_required"),
        ({"filter": {"task_id": "order"}}, 400, "invalid_request"),
        ({"action": 3, "filter": {"task_id": "order"}}, 400, "invalid_request"),
        ({"action": "cancel", "filter": {"status": "SLEEPY"}}, 400, "invalid_request"),
        ({"action": "cancel", "filter": {"task": "order"}}, 400, "invalid_request"),
        ({"action": "cancel", "filter": {"task_id": ""}}, 400, "invalid_request"),
        ({"action": "cancel", "filter": {"all": "yes"}}, 400, "invalid_request"),
        (
            {
                "action": "cancel",
                "filter": {"created_after": "2030-01-02", "created_before": "2030-01-01"},
            },
            400,
            "invalid_request",
        ),
        ({"action": "cancel", "filter": {"created_after": "yesterday"}}, 400, "invalid_request"),
        ({"action": "retry", "filter": {"created_after": 0}}, 400, "invalid_request"),
        ({"action": "cancel", "filter": "order"}, 400, "invalid_request"),
        ([], 400, "invalid_request"),
    ],
)
def test_bad_bulk_requests_are_refused_and_store_nothing(
    api: Api, env: TestEnvironment, body: Any, status: int, code: str
) -> None:
    reply = api.post("/bulk", body)
    assert reply.status == status, reply.text
    assert reply.error_code == code
    assert len(env.queue) == 0


def test_malformed_json_is_400(api: Api, env: TestEnvironment) -> None:
    reply = api.post("/bulk", raw_body='{"action": ')
    assert reply.status == 400 and reply.error_code == "malformed_json"
    assert len(env.queue) == 0


def test_an_explicit_all_cancels_every_run(api: Api, env: TestEnvironment) -> None:
    runs = [env.trigger("order", 1).run_id, env.trigger("other", 2).run_id]
    env.run_until_idle()
    reply = api.post("/bulk", {"action": "cancel", "filter": {"all": True}})
    assert reply.status == 202
    env.run_until_idle()
    done = api.get(f"/bulk/{reply.json['job_id']}").json
    assert (done["matched"], done["acted"]) == (2, 2)
    assert all(api.get(f"/runs/{run_id}").json["status"] == "CANCELLED" for run_id in runs)


def test_a_tag_filter_acts_on_the_tagged_runs(api: Api, env: TestEnvironment) -> None:
    env.trigger("order", 1)
    vip = env.trigger("order", 2, tags=["vip"])
    env.run_until_idle()
    reply = api.post("/bulk", {"action": "cancel", "filter": {"tag": "vip"}})
    assert reply.status == 202 and reply.json["filter"]["tag"] == "vip"
    env.run_until_idle()
    job = api.get(f"/bulk/{reply.json['job_id']}").json
    assert (job["state"], job["done"], job["matched"], job["acted"]) == ("completed", True, 1, 1)
    assert env.get(vip.run_id).status == "CANCELLED"


@pytest.mark.parametrize("job_id", ["bulk_" + "0" * 32, "nope", "x" * 64])
def test_an_unknown_job_is_404(api: Api, job_id: str) -> None:
    reply = api.get(f"/bulk/{job_id}")
    assert reply.status == 404 and reply.error_code == "bulk_job_not_found"


def test_an_overlong_job_id_is_400(api: Api) -> None:
    reply = api.get(f"/bulk/{'x' * 65}")
    assert reply.status == 400 and reply.error_code == "invalid_request"


def test_the_openapi_document_describes_the_bulk_routes(api: Api) -> None:
    document = api.get("/openapi.json").json
    post = document["paths"]["/bulk"]["post"]
    assert set(post["responses"]) == {"202", "400", "422"}
    assert set(document["paths"]["/bulk/{job_id}"]["get"]["responses"]) >= {"200", "404"}
    schemas = document["components"]["schemas"]
    assert {"BulkRequest", "BulkFilterBody", "BulkJobBody"} <= set(schemas)
    assert schemas["BulkRequest"]["properties"]["action"]["enum"] == ["cancel", "retry", "resume"]
