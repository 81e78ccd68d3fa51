"""`sam local` for real: the template's functions in containers, against `durable dev`.

    sam local invoke / start-api ─► container (the stand-in Lambda image) ─► durable dev's moto
                                                                              at the Docker bridge

`durable dev --host <bridge>` listens where containers reach it and writes the env.json that
`--env-vars` takes; template.yaml declares the variables it fills (SAM passes nothing else).
What is asserted is what the functions did: the API answers 202 and the run it started
completes, the worker answers `{"batchItemFailures": []}` and completes a run only it could
run (pinned to its code version), the sweeper re-enqueues an overdue run onto a queue the
test reads, and `sam local start-api` serves the API over HTTP.

They need a Docker daemon and the stand-in image (scripts/lambda-standin-image.sh):
`make test` sets both up before pytest (`sam-local-setup`, as root); run alone, the session
fixture does the same. Skipped only where that cannot be done: not root and no daemon, or no
image and not root to build it. Slow (each `sam local invoke` starts a container, about 15 s
on two cores), so marked `sam_local`: `-m "not sam_local"` leaves them out.

The first tests need neither Docker nor SAM: the template's empty defaults mean AWS.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from durable.aws import endpoint_url, region_name
from durable.local import samlocal
from durable.local.banner import render
from durable.local.gateway import LocalGateway
from durable.records import RunRecord, RunStatus
from durable.resources import ensure_resources
from durable.settings import Settings
from durable.storage.dynamodb import DynamoDBRunStore
from durable.task import TaskRegistry
from tests.e2e.devserver import DevServer, start_dev_server
from tests.sam.conftest import ROOT, SAM_ENV

IMAGE = "public.ecr.aws/lambda/python:3.11-x86_64"
EVENTS = ROOT / "events"
# What a container needs, and nothing real: SAM passes its own AWS_* to the functions.
SAM_LOCAL_ENV = {
    **{
        name: value
        for name, value in SAM_ENV.items()
        if name not in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")
        and not name.startswith("AWS_ENDPOINT_URL")
    },
    **samlocal.FAKE_CREDENTIALS,
    "AWS_REGION": "us-east-1",
}
INVOKE_TIMEOUT = 180  # seconds for one `sam local invoke` (about 15 s on a quiet machine)

# -- without Docker: the template's variables and their empty defaults -----------------


def _template_globals() -> str:
    text = (ROOT / "template.yaml").read_text()
    return text[text.index("\nGlobals:") : text.index("\nResources:")]


def test_the_template_declares_the_endpoint_and_region_empty() -> None:
    globals_section = _template_globals()
    for name in ("DURABLE_ENDPOINT_URL", "DURABLE_REGION"):
        assert re.search(rf'^\s+{name}: ""\s*$', globals_section, re.MULTILINE), name
    # every variable env.json sets is one the template declares (else SAM drops it)
    variables = samlocal.env_variables(
        endpoint_url="u",
        region="r",
        table_name="t",
        queue_url="q",
        bucket_name="b",
        code_version="c",
        task_modules="m",
    )
    for name in variables:
        assert re.search(rf"^\s+{name}:", globals_section, re.MULTILINE), name


def test_empty_endpoint_and_region_mean_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("DURABLE_", "AWS_ENDPOINT_URL")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DURABLE_ENDPOINT_URL", "")
    monkeypatch.setenv("DURABLE_REGION", "")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")  # what Lambda sets in every function

    settings = Settings()

    assert settings.endpoint_url is None
    assert endpoint_url(settings, "dynamodb") is None
    assert region_name(settings) == "eu-west-3"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert region_name(Settings()) == "us-east-1"
    # a value given is used as before
    monkeypatch.setenv("DURABLE_ENDPOINT_URL", "http://172.17.0.1:5000")
    monkeypatch.setenv("DURABLE_REGION", "us-east-1")
    assert endpoint_url(Settings(), "sqs") == "http://172.17.0.1:5000"
    assert region_name(Settings()) == "us-east-1"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("::1", "IPv6"),
        ("192.0.2.1", "not an address of this machine"),
        ("no-such-host.invalid", "neither an IPv4 address nor a host name"),
    ],
)
def test_dev_refuses_a_host_it_cannot_listen_on(argument: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable.cli", "dev", "--host", argument, "--ephemeral"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "argument --host" in result.stderr
    assert message in result.stderr


def test_on_every_interface_this_machine_and_containers_get_their_own_address() -> None:
    assert samlocal.local_address("0.0.0.0") == "127.0.0.1"
    assert samlocal.container_address("0.0.0.0") == samlocal.bridge_address()
    assert samlocal.local_address("172.17.0.1") == "172.17.0.1"
    assert samlocal.container_address("172.17.0.1") == "172.17.0.1"
    assert samlocal.is_loopback("127.0.0.1") and samlocal.is_loopback("localhost")
    assert not samlocal.is_loopback("0.0.0.0") and not samlocal.is_loopback("172.17.0.1")
    assert (
        samlocal.with_host("http://0.0.0.0:4566/123456789012/q", "172.17.0.1")
        == "http://172.17.0.1:4566/123456789012/q"
    )
    gateway = LocalGateway(("0.0.0.0", 0), lambda event, context: {"statusCode": 200})
    try:
        assert gateway.url == f"http://127.0.0.1:{gateway.server_address[1]}"
    finally:
        gateway.server_close()


def test_the_banner_says_where_env_json_is_and_whether_containers_reach_the_stack(
    tmp_path: Path,
) -> None:
    common: dict[str, Any] = {
        "url": "http://127.0.0.1:8000",
        "moto_url": "http://127.0.0.1:4566",
        "registry": TaskRegistry(),
        "tasks": ["tasks"],
        "table": "t",
        "queue": "q",
        "bucket": "b",
        "concurrency": 1,
        "time_limit": 8.0,
        "visibility_timeout": 10,
    }
    env_json = tmp_path / "env.json"

    loopback = render(**common, env_json=env_json, containers_reach=False)
    bridge = render(**common, env_json=env_json, containers_reach=True)

    assert f"--env-vars {env_json}" in loopback and f"--env-vars {env_json}" in bridge
    assert "start with --host 172.17.0.1" in loopback
    assert "--host 172.17.0.1" not in bridge and "AWS_ACCESS_KEY_ID=testing" in bridge
    assert "sam local" not in render(**common)


# -- Docker, the stand-in image, durable dev for containers -----------------------------


@pytest.fixture(scope="session")
def docker_ready() -> None:
    """A Docker daemon that answers and the stand-in image: set up, or a skip saying why."""
    started = time.monotonic()
    daemon = subprocess.run(
        [str(ROOT / "scripts" / "docker-daemon.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if daemon.returncode == 3:
        pytest.skip(f"sam local needs Docker: {daemon.stderr.strip()}")
    assert daemon.returncode == 0, daemon.stdout + daemon.stderr
    inspect = subprocess.run(
        ["docker", "image", "inspect", IMAGE], capture_output=True, text=True, timeout=60
    )
    if inspect.returncode != 0:
        if os.geteuid() != 0:
            pytest.skip(f"the stand-in image {IMAGE} is not built, and building it needs root")
        build = subprocess.run(
            [str(ROOT / "scripts" / "lambda-standin-image.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert build.returncode == 0, build.stdout + build.stderr
    print(f"Docker and the stand-in image ready in {time.monotonic() - started:.1f}s")


@pytest.fixture(scope="module")
def dev_stack(docker_ready: None) -> Iterator[DevServer]:
    """`durable dev` listening on the Docker bridge, serving the example tasks only (the
    containers have what `sam build` put there: src/)."""
    server = start_dev_server("--host", samlocal.bridge_address(), tasks="tasks")
    try:
        yield server
    finally:
        stopping = time.monotonic()
        server.stop()
        print(f"durable dev stopped in {time.monotonic() - stopping:.1f}s")


@pytest.fixture(scope="module")
def dev_info(dev_stack: DevServer) -> dict[str, str]:
    info: dict[str, str] = httpx.get(f"{dev_stack.url}/.well-known/durable-dev", timeout=10).json()
    return info


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process talks to the dev stack's moto with fake credentials."""
    for name, value in {**samlocal.FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "DURABLE_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def _env_json(info: dict[str, str], tmp_path: Path, **changes: str) -> Path:
    """The dev stack's env.json, with `changes` made to every function's variables."""
    document = json.loads(Path(info["env_json"]).read_text())
    for variables in document.values():
        variables.update(changes)
    path = tmp_path / "env.json"
    path.write_text(json.dumps(document))
    return path


def _invoke(
    sam_bin: Path, build_dir: Path, function: str, event: dict[str, Any], env_json: Path
) -> Any:
    """`sam local invoke FUNCTION` on `event`: what the function returned."""
    event_file = env_json.with_name(f"event-{function}.json")
    event_file.write_text(json.dumps(event))
    started = time.monotonic()
    result = subprocess.run(
        [
            str(sam_bin),
            "local",
            "invoke",
            "--template",
            str(build_dir / "template.yaml"),
            "--skip-pull-image",
            "--env-vars",
            str(env_json),
            "--event",
            str(event_file),
            function,
        ],
        cwd=build_dir,
        env=SAM_LOCAL_ENV,
        capture_output=True,
        text=True,
        timeout=INVOKE_TIMEOUT,
    )
    print(f"sam local invoke {function}: {time.monotonic() - started:.1f}s")
    if os.environ.get("DURABLE_SAM_LOCAL_VERBOSE"):
        print(result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    lines = result.stdout.strip().splitlines()
    assert lines, f"{function} answered nothing:\n{result.stderr[-4000:]}"
    try:
        return json.loads(lines[-1])
    except ValueError:
        pytest.fail(f"{function} answered {lines[-1]!r}:\n{result.stderr[-4000:]}")


def _event(name: str, run_id: str | None = None) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    if run_id is not None:
        text = text.replace("run_0000000000000example000000000000", run_id)
    event: dict[str, Any] = json.loads(text)
    return event


def _wait_for_end(base_url: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = httpx.get(f"{base_url}/runs/{run_id}", timeout=30).json()
        if run.get("status") in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"):
            return run
        if time.monotonic() >= deadline:
            history = httpx.get(f"{base_url}/runs/{run_id}/history", timeout=30).text
            pytest.fail(f"run {run_id} did not end within {timeout}s: {run}\n{history}")
        time.sleep(0.5)


def _seed_queued_run(store: DynamoDBRunStore, code_version: str, wake_at: datetime) -> str:
    """A QUEUED process-order run, as an API of `code_version` would have left it."""
    run_id = f"run_samlocal_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    store.create_run(
        RunRecord(
            run_id=run_id,
            task_id="process-order",
            status=RunStatus.QUEUED,
            payload=json.dumps({"order_id": run_id[-8:]}),
            created_at=now,
            updated_at=now,
            code_version=code_version,
            wake_at=wake_at,
        )
    )
    return run_id


# -- sam local, for real -----------------------------------------------------------------


@pytest.mark.sam_local
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_dev_tells_containers_where_it_is(dev_stack: DevServer, dev_info: dict[str, str]) -> None:
    bridge = samlocal.bridge_address()
    assert dev_stack.url.startswith(f"http://{bridge}:")
    assert dev_info["code_version"] == "dev"
    env_json = Path(dev_info["env_json"])
    assert f"--env-vars {env_json}" in dev_stack.output  # the banner says where it is
    document = json.loads(env_json.read_text())
    assert set(document) == {"Parameters", *samlocal.FUNCTIONS}
    for variables in document.values():
        assert variables["DURABLE_ENDPOINT_URL"] == dev_info["container_moto_url"]
        assert variables["DURABLE_ENDPOINT_URL"].startswith(f"http://{bridge}:")
        assert variables["DURABLE_CODE_VERSION"] == dev_info["code_version"]
        assert variables["DURABLE_TABLE_NAME"] == dev_info["table_name"]
        assert variables["DURABLE_TASK_MODULES"] == "tasks"
    # and a container does reach moto and the API there
    assert _reach_from_a_container(dev_info["container_moto_url"]) == "reached"
    assert _reach_from_a_container(f"{dev_stack.url}/openapi.json") == "reached"


def _reach_from_a_container(url: str) -> str:
    """What a container of the stand-in image gets at `url`: "reached" or an error."""
    probe = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--entrypoint",
            "python3.11",
            IMAGE,
            "-c",
            "import sys, urllib.error, urllib.request\n"
            "try:\n    urllib.request.urlopen(sys.argv[1], timeout=10)\n"
            "except urllib.error.HTTPError:\n    pass\n"
            "print('reached')",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.stdout.strip() or probe.stderr.strip()


@pytest.mark.sam_local
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_dev_on_every_interface_is_reached_here_on_loopback_and_from_containers(
    docker_ready: None,
) -> None:
    server = start_dev_server("--host", "0.0.0.0", tasks="tasks")
    try:
        port = server.url.rsplit(":", 1)[1]
        assert server.url == f"http://127.0.0.1:{port}"
        info = httpx.get(f"{server.url}/.well-known/durable-dev", timeout=10).json()
        assert info["moto_url"].startswith("http://127.0.0.1:")
        bridge = samlocal.bridge_address()
        assert info["container_moto_url"].startswith(f"http://{bridge}:")
        env = json.loads(Path(info["env_json"]).read_text())["WorkerFunction"]
        assert env["DURABLE_ENDPOINT_URL"] == info["container_moto_url"]

        assert _reach_from_a_container(f"http://{bridge}:{port}/openapi.json") == "reached"
        assert _reach_from_a_container(info["container_moto_url"]) == "reached"
    finally:
        server.stop()


@pytest.mark.sam_local
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_api_function_starts_a_run_that_completes(
    sam_bin: Path, sam_build_dir: Path, dev_stack: DevServer, dev_info: dict[str, str]
) -> None:
    env_json = Path(dev_info["env_json"])

    answer = _invoke(
        sam_bin,
        sam_build_dir,
        "IamApiFunction",
        _event("api-trigger-process-order.json"),
        env_json,
    )

    assert answer["statusCode"] == 202, answer
    run_id = json.loads(answer["body"])["run_id"]
    # the stack's own workers run it: the container pinned it to the stack's code version
    run = _wait_for_end(dev_stack.url, run_id)
    assert run["status"] == "COMPLETED", run
    assert run["version"]["code"] == dev_info["code_version"]
    assert run["result"]["order_id"] == "o-1001"


@pytest.mark.sam_local
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_worker_function_runs_a_run_only_it_can_run(
    sam_bin: Path,
    sam_build_dir: Path,
    dev_stack: DevServer,
    dev_info: dict[str, str],
    aws_env: None,
    tmp_path: Path,
) -> None:
    # Pinned to a code version the stack's own workers do not run: they hold it, and only
    # a worker of that version (the container's) can complete it.
    store = DynamoDBRunStore(
        dev_info["table_name"], region=dev_info["region"], endpoint_url=dev_info["moto_url"]
    )
    run_id = _seed_queued_run(store, "sam-local", wake_at=datetime.now(UTC))
    env_json = _env_json(dev_info, tmp_path, DURABLE_CODE_VERSION="sam-local")

    answer = _invoke(
        sam_bin,
        sam_build_dir,
        "WorkerFunction",
        _event("sqs-wake-up-batch.json", run_id),
        env_json,
    )

    assert answer == {"batchItemFailures": []}
    run = _wait_for_end(dev_stack.url, run_id, timeout=30)
    assert run["status"] == "COMPLETED", run
    assert run["version"]["code"] == "sam-local"
    assert run["result"]["status"] == "paid"


@pytest.mark.sam_local
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_sweeper_function_re_enqueues_an_overdue_run(
    sam_bin: Path,
    sam_build_dir: Path,
    dev_info: dict[str, str],
    aws_env: None,
    tmp_path: Path,
) -> None:
    # A table and queue of its own in the dev stack's moto: the stack's sweeper and poller
    # never see them, so what is on the queue afterwards is the container's doing.
    name = f"samlocal-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        table_name=name,
        queue_name=name,
        bucket_name=name,
        endpoint_url=dev_info["moto_url"],
        region=dev_info["region"],
    )
    queue_url = ensure_resources(settings)
    store = DynamoDBRunStore.from_settings(settings)
    overdue = _seed_queued_run(store, "dev", wake_at=datetime.now(UTC) - timedelta(minutes=10))
    container_queue_url = queue_url.replace(dev_info["moto_url"], dev_info["container_moto_url"])
    env_json = _env_json(
        dev_info,
        tmp_path,
        DURABLE_TABLE_NAME=name,
        DURABLE_QUEUE_URL=container_queue_url,
        DURABLE_BUCKET_NAME=name,
    )

    answer = _invoke(
        sam_bin, sam_build_dir, "SweeperFunction", _event("schedule-sweeper.json"), env_json
    )

    assert answer == {"runs_enqueued": 1}
    sqs = boto3.client("sqs", region_name=dev_info["region"], endpoint_url=dev_info["moto_url"])
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5)
    bodies = [json.loads(message["Body"]) for message in received.get("Messages", [])]
    assert overdue in [body["run_id"] for body in bodies], bodies


@pytest.fixture
def start_api(sam_bin: Path, sam_build_dir: Path, dev_info: dict[str, str]) -> Iterator[str]:
    """`sam local start-api` on a free port (warm containers: one per function, reused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (sam_build_dir / f"start-api-{port}.log").open("w")
    process = subprocess.Popen(
        [
            str(sam_bin),
            "local",
            "start-api",
            "--template",
            str(sam_build_dir / "template.yaml"),
            "--skip-pull-image",
            "--env-vars",
            dev_info["env_json"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--warm-containers",
            "LAZY",
        ],
        cwd=sam_build_dir,
        env=SAM_LOCAL_ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, Path(log.name).read_text()[-4000:]
            try:
                httpx.get(f"{url}/openapi.json", timeout=60)
                break
            except httpx.TransportError:
                if time.monotonic() >= deadline:
                    pytest.fail(f"start-api did not answer:\n{Path(log.name).read_text()[-4000:]}")
                time.sleep(0.5)
        yield url
    finally:
        # SIGTERM: SAM stops and removes its warm containers itself.
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        print(f"sam local start-api stopped in {time.monotonic() - stopping:.1f}s")


@pytest.mark.sam_local
@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_start_api_serves_the_api_over_http(start_api: str, dev_info: dict[str, str]) -> None:
    with httpx.Client(base_url=start_api, timeout=60) as api:
        triggered = api.post("/tasks/process-order/runs", json={"payload": {"order_id": "o-7"}})
        assert triggered.status_code == 202, triggered.text
        run_id = triggered.json()["run_id"]

        run = _wait_for_end(start_api, run_id)

        assert run["status"] == "COMPLETED", run
        assert run["version"]["code"] == dev_info["code_version"]
        assert api.get(f"/runs/{run_id}/history").status_code == 200
        unknown = api.get("/runs/run_00000000000000000000000000000000")
        assert unknown.status_code == 404, unknown.text
