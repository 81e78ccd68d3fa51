"""`durable invoke`: run one Lambda handler on one event file, as `sam local invoke` does.

Without Docker: the handler runs in this process, with a Lambda-like context whose
remaining time counts down from `--timeout`. Where it runs against:

- a running `durable dev` (the default; `--url` names it): the handler gets the dev
  stack's moto endpoint, table, queue and bucket, asked of the dev server at
  `/.well-known/durable-dev`;
- AWS, with `--aws` or when the AWS environment is set (`AWS_REGION` and
  `DURABLE_TABLE_NAME`) and no URL is given: the environment is used as it is.

`--env-vars FILE` takes SAM's format (`{"Parameters": {...}, "FunctionId": {...}}`) or a
flat `{"NAME": "value"}` object, applied last. The handler's response is printed as JSON;
an exception is printed as Lambda reports it (`errorType`, `errorMessage`, `stackTrace`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durable.local.gateway import DEV_INFO_PATH
from durable.local.invoke import load_handler
from durable.local.lambda_context import LocalLambdaContext
from durable.serialization import JsonData

# Template logical ids and short names -> handler, as `sam local invoke FUNCTION` takes them.
HANDLERS = {
    "api": "handlers.api:handler",
    "worker": "handlers.worker:handler",
    "sweeper": "handlers.sweeper:handler",
    "ApiFunction": "handlers.api:handler",
    "IamApiFunction": "handlers.api:handler",
    "JwtApiFunction": "handlers.api:handler",
    "WorkerFunction": "handlers.worker:handler",
    "SweeperFunction": "handlers.sweeper:handler",
}
FUNCTION_IDS = {
    "handlers.api:handler": "IamApiFunction",
    "handlers.worker:handler": "WorkerFunction",
    "handlers.sweeper:handler": "SweeperFunction",
}


class InvokeError(Exception):
    """Bad input to `durable invoke` (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one invocation printed: the response or the error, and whether it failed."""

    output: Any
    failed: bool


def resolve_handler(name: str) -> tuple[str, str]:
    """(handler spec, template function id) for a short name, logical id or dotted path."""
    spec = HANDLERS.get(name)
    if spec is None:
        if ":" in name:
            spec = name
        elif name.endswith(".py"):
            spec = name[: -len(".py")].replace("/", ".").removeprefix("src.") + ":handler"
        elif "." in name:
            module, _, attribute = name.rpartition(".")
            spec = f"{module}:{attribute}"
        else:
            choices = ", ".join(sorted(HANDLERS))
            raise InvokeError(f"unknown handler {name!r}; use one of {choices} or module:function")
    return spec, FUNCTION_IDS.get(spec, spec.split(":")[0].rsplit(".", 1)[-1])


def read_json_file(path: str, what: str) -> JsonData:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvokeError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvokeError(f"the {what} file {path} is not JSON: {exc}") from None


def environment_from_dev(url: str) -> dict[str, str]:
    """The variables that point a handler at a running `durable dev`."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + DEV_INFO_PATH, timeout=5) as response:
            info = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InvokeError(
            f"cannot reach `durable dev` at {url} ({reason}). Start it with `make dev`, "
            "point --url at it, or use --aws (with the AWS environment set) to run against AWS"
        ) from None
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": info["region"],
        "AWS_DEFAULT_REGION": info["region"],
        "AWS_ENDPOINT_URL": info["moto_url"],
        "DURABLE_ENDPOINT_URL": info["moto_url"],
        "DURABLE_REGION": info["region"],
        "DURABLE_TABLE_NAME": info["table_name"],
        "DURABLE_QUEUE_URL": info["queue_url"],
        "DURABLE_BUCKET_NAME": info["bucket_name"],
        "DURABLE_TASK_MODULES": info["task_modules"],
        "DURABLE_TASK_PATH": str(info.get("task_path", "")),
        "DURABLE_LEASE_SECONDS": info["lease_seconds"],
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


def environment_from_file(path: str, function_id: str) -> dict[str, str]:
    """Variables from an --env-vars file: SAM's sections, or one flat object."""
    data = read_json_file(path, "--env-vars")
    if not isinstance(data, dict):
        raise InvokeError(f"the --env-vars file {path} must hold a JSON object")
    sections = [value for value in data.values() if isinstance(value, dict)]
    if sections:
        merged: dict[str, Any] = {}
        merged.update(data.get("Parameters", {}))
        merged.update(data.get(function_id, {}))
    else:
        merged = data
    return {str(name): str(value) for name, value in merged.items()}


def invoke(
    handler_name: str,
    event_path: str,
    *,
    url: str | None,
    use_aws: bool,
    env_vars_path: str | None = None,
    timeout: float = 30.0,
) -> Invocation:
    """Run the handler once on the event, in this process."""
    spec, function_id = resolve_handler(handler_name)
    event = read_json_file(event_path, "event")
    aws_environment = bool(os.environ.get("AWS_REGION") and os.environ.get("DURABLE_TABLE_NAME"))
    # Like a Lambda's /var/task, or `durable dev`: the user's task modules are found from the
    # working directory (and from the directory the dev stack serves them from).
    task_paths = [os.getcwd()]
    if not (use_aws or (url is None and aws_environment)):
        dev_environment = environment_from_dev(url or "http://127.0.0.1:8000")
        task_paths.append(dev_environment.pop("DURABLE_TASK_PATH", ""))
        os.environ.update(dev_environment)
    for path in task_paths:
        if path and path not in sys.path:
            sys.path.insert(0, path)
    if env_vars_path is not None:
        os.environ.update(environment_from_file(env_vars_path, function_id))
    # As with `sam local invoke`, stdout carries only the response: the handler's prints and
    # logs (Powertools' logger binds its stream at import) go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            handler = load_handler(spec)
        except (ImportError, AttributeError, ValueError, TypeError) as exc:
            raise InvokeError(f"cannot load the handler {spec}: {exc}") from None
        context = LocalLambdaContext(function_id, timeout)
        try:
            return Invocation(output=handler(event, context), failed=False)
        except Exception as exc:
            return _failure(exc)


def _failure(exc: Exception) -> Invocation:
    return Invocation(
        output={
            "errorType": type(exc).__name__,
            "errorMessage": str(exc),
            "stackTrace": traceback.format_exception(exc),
        },
        failed=True,
    )
