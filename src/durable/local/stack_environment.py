"""What `durable dev` tells the code that runs against it where everything is.

- `configure_environment`: the environment of the stack's own process and of every worker
  process it starts (moto's endpoint, fake credentials, the stack's timing).
- `dev_info`: what `durable invoke` reads from the gateway to run a handler here.
- `write_env_json`: `env.json` for `sam local --env-vars`, reached from a container.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from durable.local import samlocal

if TYPE_CHECKING:
    from durable.local.stack import DevStack

REGION = "us-east-1"


def configure_environment(stack: DevStack) -> None:
    """The environment of this process and of every worker process it starts."""
    options = stack.options
    # Real credentials must never reach moto, nor a profile redirect the clients.
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in (
            "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
        ):
            del os.environ[name]
    tasks = options.tasks or os.environ.get("DURABLE_TASK_MODULES") or "tasks"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": stack.moto_url,
            "DURABLE_ENDPOINT_URL": stack.moto_url,
            "DURABLE_REGION": REGION,
            "DURABLE_TASK_MODULES": tasks,
            "DURABLE_LEASE_SECONDS": str(options.lease_seconds),
            "DURABLE_INVOCATION_MARGIN_SECONDS": str(options.margin_seconds),
            "DURABLE_SWEEP_GRACE_SECONDS": str(options.sweep_grace),
        }
    )
    # No X-Ray daemon and no CloudWatch here: keep the output to the logs that matter.
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "durable")
    # The example tasks' fakes keep their files with the rest of this stack's state.
    os.environ.setdefault("DURABLE_FAKES_DIR", str(stack.state_path / "fakes"))


def dev_info(stack: DevStack) -> dict[str, str]:
    """What `durable invoke` needs to run a handler against this stack."""
    assert stack.runtime is not None
    settings = stack.runtime.settings
    return {
        "moto_url": stack.moto_url,
        "region": REGION,
        "table_name": settings.table_name,
        "queue_url": stack.queue_url,
        "bucket_name": settings.bucket_name,
        "task_modules": ",".join(settings.task_module_list),
        # Where the stack found the task modules (its working directory): `durable
        # invoke`, run from anywhere, imports them from there too.
        "task_path": os.getcwd(),
        "lease_seconds": str(stack.options.lease_seconds),
        # The code version runs started here are pinned to: a `sam local` function
        # must run the same one (env.json sets it) or its runs wait for another.
        "code_version": settings.code_version,
        "env_json": str(stack.env_json_path or ""),
        "container_moto_url": container_moto_url(stack),
    }


def container_moto_url(stack: DevStack) -> str:
    return samlocal.with_host(stack.moto_url, samlocal.container_address(stack.options.host))


def write_env_json(stack: DevStack) -> Path:
    """`env.json` for `sam local invoke/start-api --env-vars`: this stack's resources,
    reached from a container (see durable.local.samlocal)."""
    assert stack.runtime is not None
    settings = stack.runtime.settings
    variables = samlocal.env_variables(
        endpoint_url=container_moto_url(stack),
        region=REGION,
        table_name=settings.table_name,
        queue_url=stack.queue_url.replace(stack.moto_url, container_moto_url(stack)),
        bucket_name=settings.bucket_name,
        code_version=settings.code_version,
        task_modules=",".join(settings.task_module_list),
    )
    return samlocal.write_env_json(stack.state_path, variables)
