"""`durable dev`: the whole stack on this machine, standing in for AWS.

    curl ─► LocalGateway (127.0.0.1:PORT) ─► handlers.api ─► moto DynamoDB/SQS/S3
                                                               │
    QueuePoller (the SQS event source mapping) ◄───────────────┘
      └─► ContainerPool: handlers.worker, one invocation per process, killed at the limit
            └─► what they print: the console, and moto's CloudWatch Logs (LogShipper)
    sweeper loop (the EventBridge schedule) ─► re-enqueue overdue runs, and send a purge
                                               message for the expiry shard (the dev table
                                               has 1) when runs are past retention: the
                                               workers purge them, as in AWS

Timing, chosen so that a crash is recovered in seconds and never waits on a live lease:

    invocation time limit  T (default 8 s)    the process is killed at T
    worker lease           T                  a dead invocation's lease is over by T
    visibility timeout     ceil(T) + 2 s      SQS redelivers after the lease has run out
    hand-over margin       min(2 s, T / 4)    the worker continues in a new invocation
    sweeper                every 2 s, grace 3 s

moto keeps its state in memory: everything is gone when the server stops.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from durable.local import samlocal
from durable.local.console import Console, Entry, LogFormat, entry, in_process_source
from durable.local.containers import ContainerPool
from durable.local.gateway import LocalGateway
from durable.local.invoke import load_handler
from durable.local.moto_process import MotoProcess, MotoStartError
from durable.local.stack_environment import (
    REGION,
    configure_environment,
    dev_info,
    write_env_json,
)

if TYPE_CHECKING:
    from durable.bootstrap import Runtime
    from durable.local.log_shipper import LogShipper
    from durable.local.poller import QueuePoller
    from durable.settings import Settings

API_HANDLER = "handlers.api:handler"
WORKER_HANDLER = "handlers.worker:handler"
WORKER_FUNCTION = "durable-worker"
# Index shards of the table `durable dev` creates: one machine has no partitions to spread
# the load over, and moto reads every item of the table for each index query (see
# `durable.local.moto_patches`, patch 3), which a listing or a sweep makes once per shard.
# With 4, the sweeps' queries (every 2 s) cost a fifth of the stack's closed-loop
# throughput (bench/dev_throughput.py, 200 runs: 17-19 runs/s against 21-23 with 1).
DEV_INDEX_SHARDS = 1


def migrate_first_layout(settings: Settings) -> bool:
    """Migrate the stack's table if it has the first layout (a state directory kept by an
    earlier version: the table is this stack's alone, see `durable migrate`); whether it did.
    """
    from durable.aws import endpoint_url, region_name
    from durable.storage.migration import migrate_table, needs_migration

    table = (settings.table_name, region_name(settings), endpoint_url(settings, "dynamodb"))
    if not needs_migration(*table):
        return False
    migrate_table(*table, shards=DEV_INDEX_SHARDS, poll_seconds=0.1)
    return True


class DevError(Exception):
    """`durable dev` cannot start; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class DevOptions:
    """What `durable dev` was asked for."""

    port: int = 8000
    host: str = "127.0.0.1"
    tasks: str | None = None  # comma-separated modules; None: DURABLE_TASK_MODULES or "tasks"
    moto_port: int = 0  # 0: any free port
    concurrency: int = 4
    invocation_timeout: float = 8.0
    sweep_interval: float = 2.0
    sweep_grace: float = 3.0
    access_log: bool = True
    state_dir: str = ".durable"  # relative to the working directory
    ephemeral: bool = False  # keep nothing: a temporary directory, removed at stop
    log_format: LogFormat = "text"  # the console: "text" (readable) or "json" (one per line)
    verbose: bool = False  # text: whole tracebacks, and each record's location

    @property
    def lease_seconds(self) -> float:
        return self.invocation_timeout

    @property
    def visibility_timeout(self) -> int:
        return math.ceil(self.invocation_timeout) + 2

    @property
    def margin_seconds(self) -> float:
        return min(2.0, self.invocation_timeout / 4)


class DevStack:
    """Starts and stops the local stack; `with DevStack(options) as stack: ...`."""

    def __init__(self, options: DevOptions, log: Callable[[Entry], None] | None = None) -> None:
        self.options = options
        # Every line the stack and its processes print goes through the console.
        self.console = Console(options.log_format, verbose=options.verbose)
        self._log = log or self.console.emit
        self._stopped = threading.Event()
        self._moto: MotoProcess | None = None
        self._gateway: LocalGateway | None = None
        self._pool: ContainerPool | None = None
        self._poller: QueuePoller | None = None
        self._shipper: LogShipper | None = None
        self._sweeper: threading.Thread | None = None
        self._serving: threading.Thread | None = None
        self.runtime: Runtime | None = None
        self.moto_url = ""
        self.queue_url = ""
        self.env_json_path: Path | None = None  # for `sam local --env-vars`
        self.state_path = self._state_directory()

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> DevStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._gateway is not None, "start() first"
        return self._gateway.url

    def start(self) -> None:
        options = self.options
        if options.invocation_timeout <= 0:
            raise DevError("--invocation-timeout must be positive")
        if options.concurrency < 1:
            raise DevError("--concurrency must be at least 1")
        # Task modules named on the command line are found from the current directory, as
        # `python -m` would (the worker processes are started with `-m`, so they do too).
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        self._route_logs()
        self._gateway = self._bind_gateway()
        self._start_moto()
        # Bound to 0.0.0.0 (for containers), moto is reached here at 127.0.0.1.
        self.moto_url = samlocal.with_host(self.moto_url, samlocal.local_address(self.options.host))
        configure_environment(self)
        # Where the workers' lines go (as Lambda's do) and `GET /runs/{id}/logs` reads them.
        os.environ["DURABLE_LOG_GROUP"] = f"/aws/lambda/{WORKER_FUNCTION}"
        self._create_resources()
        self.runtime = self._load_runtime()
        self.env_json_path = write_env_json(self)
        self._gateway.dev_info = dev_info(self)
        self._start_workers()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="sweeper", daemon=True)
        self._sweeper.start()
        self._serving = self._gateway.serve_in_thread()
        assert self._pool is not None
        if not self._pool.wait_idle(1, timeout=60):
            raise DevError("the worker processes did not start within 60s (see the log above)")

    def stop(self) -> None:
        """Stop everything; safe to call twice and after a failed start."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._gateway is not None:
            if self._serving is not None:  # shutdown() would wait forever for a loop never run
                self._quietly(self._gateway.shutdown)
            self._quietly(self._gateway.server_close)
        if self._poller is not None:
            self._quietly(self._poller.stop)
        if self._sweeper is not None:
            self._sweeper.join(5)
        if self._pool is not None:
            self._quietly(self._pool.close)
        poller = self._poller
        if poller is not None:
            self._quietly(lambda: poller.join_invocations(5))
        if self._shipper is not None:
            self._quietly(self._shipper.stop)
        if self._moto is not None:
            self._quietly(self._moto.stop)
        if self.options.ephemeral:
            shutil.rmtree(self.state_path, ignore_errors=True)

    def serve_until_stopped(self, stop: threading.Event) -> None:
        """Block until `stop` is set (by a signal handler, usually)."""
        while not stop.wait(0.5):
            pass

    def banner(self) -> str:
        from durable.local.banner import render

        assert self.runtime is not None
        settings = self.runtime.settings
        return render(
            url=self.url,
            moto_url=self.moto_url,
            registry=self.runtime.registry,
            tasks=settings.task_module_list,
            table=settings.table_name,
            queue=settings.queue_name,
            bucket=settings.bucket_name,
            concurrency=self.options.concurrency,
            time_limit=self.options.invocation_timeout,
            visibility_timeout=self.options.visibility_timeout,
            env_json=self.env_json_path,
            containers_reach=not samlocal.is_loopback(self.options.host),
            state_dir=None if self.options.ephemeral else self.state_path,
        )

    # -- the parts ----------------------------------------------------------------------

    def _state_directory(self) -> Path:
        """Where this stack keeps what outlives a process: its state, the fakes' files, and
        `env.json`. With --ephemeral, a temporary directory removed at stop."""
        if self.options.ephemeral:
            return Path(tempfile.mkdtemp(prefix="durable-dev-"))
        return Path(self.options.state_dir).resolve()

    def _bind_gateway(self) -> LocalGateway:
        """Bind the API's port first: a port in use is the likeliest failure, so fail fast."""
        options = self.options
        try:
            api_handler = load_handler(API_HANDLER)
            return LocalGateway(
                (options.host, options.port),
                api_handler,
                access_log=self._access if options.access_log else None,
            )
        except OSError as exc:
            raise DevError(
                f"cannot listen on {options.host}:{options.port} ({exc.strerror}); "
                "is another `durable dev` running? Pick another port with --port"
            ) from exc

    def _start_moto(self) -> None:
        """moto in its own process (`durable.local.moto_process`), keeping its state in the
        state directory unless --ephemeral; it exits when this process does."""
        ephemeral = self.options.ephemeral
        if not ephemeral:
            self._log(entry("state", f"restoring from {self.state_path}"))
        self._moto = MotoProcess(
            self.options.host,
            self.options.moto_port,
            None if ephemeral else self.state_path,
            self.console,
        )
        try:
            ready = self._moto.start()
        except MotoStartError as exc:
            raise DevError(str(exc)) from None
        self.moto_url = f"http://{self.options.host}:{ready['port']}"
        if not ephemeral:
            self._log(
                entry(
                    "state",
                    f"{ready['restored_records']} record(s) restored "
                    f"in {ready['restore_seconds']:.1f}s",
                    data={"records": ready["restored_records"]},
                )
            )

    def _create_resources(self) -> None:
        from datetime import timedelta

        from durable.bootstrap import reset_runtime
        from durable.resources import ensure_resources
        from durable.settings import Settings

        reset_runtime()  # also forgets settings read before the environment was set
        visibility = timedelta(seconds=self.options.visibility_timeout)
        settings = Settings()
        self.queue_url = ensure_resources(
            settings, visibility_timeout=visibility, index_shards=DEV_INDEX_SHARDS
        )
        if migrate_first_layout(settings):
            print("migrated the state directory's table to the current layout", file=sys.stderr)
        os.environ["DURABLE_QUEUE_URL"] = self.queue_url
        # The worker limit of GET /metrics: the container pool's size.
        os.environ["DURABLE_WORKER_MAX_CONCURRENCY"] = str(self.options.concurrency)
        reset_runtime()

    def _load_runtime(self) -> Runtime:
        from durable.bootstrap import get_runtime

        try:
            return get_runtime()
        except ImportError as exc:
            raise DevError(
                f"cannot import the task modules {os.environ['DURABLE_TASK_MODULES']!r}: {exc}. "
                "Name importable modules with --tasks (run from your project's directory)"
            ) from exc

    def _start_workers(self) -> None:
        from durable.aws import boto3_client
        from durable.local.log_shipper import shipper_for
        from durable.local.poller import QueuePoller

        assert self.runtime is not None
        settings = self.runtime.settings
        sqs = boto3_client("sqs", settings)
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self._shipper = shipper_for(
            settings, lambda message: self._log(entry("logs", message, level="WARNING"))
        )
        self._shipper.start()
        self._pool = ContainerPool(
            WORKER_HANDLER,
            self.options.concurrency,
            function_name=WORKER_FUNCTION,
            log=self._log,
            output=self.console.feed,
            log_streams=self._shipper.stream,
        )
        self._pool.start()
        self._poller = QueuePoller(
            sqs=sqs,
            queue_url=self.queue_url,
            queue_arn=arn["Attributes"]["QueueArn"],
            region=REGION,
            pool=self._pool,
            time_limit=self.options.invocation_timeout,
            log=self._log,
        )
        self._poller.start()

    def _sweep_loop(self) -> None:
        """The scheduled sweeper: every few seconds, re-enqueue runs whose wake-up is overdue."""
        assert self.runtime is not None
        while not self._stopped.wait(self.options.sweep_interval):
            try:
                sent = self.runtime.sweep()
            except Exception as exc:
                if not self._stopped.is_set():
                    self._log(entry("sweeper", f"failed: {exc}", level="ERROR"))
                continue
            if sent:
                self._log(
                    entry("sweeper", f"re-enqueued {sent} overdue run(s)", data={"runs": sent})
                )

    # -- output -------------------------------------------------------------------------

    def _route_logs(self) -> None:
        """Powertools' records logged in this process (the API handler's, the sweeper's)
        go through the console too, tagged by the thread that logs them."""
        import logging

        from durable.logs import library_logger

        handler = library_logger().registered_handler
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(self.console.writer(in_process_source))

    def _access(self, line: str) -> None:
        """The gateway's `METHOD PATH STATUS 12ms`: an ERROR line for a 5xx, WARN for a 4xx."""
        parts = line.split(" ")
        status = int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else 0
        level = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        data = {"method": parts[0], "path": parts[1], "status": status} if status else {}
        self._log(entry("api", line, level=level, data=data))

    def _quietly(self, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:
            self._log(entry("dev", f"while stopping: {exc}", level="WARNING"))


def run_dev(options: DevOptions) -> int:
    """`durable dev`: start the stack, print where it is, serve until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    stack = DevStack(options)
    # With --log-format json, stdout carries only JSON lines: the rest goes to stderr.
    say = sys.stderr if options.log_format == "json" else sys.stdout
    with stack:
        print(stack.banner(), file=say, flush=True)
        stack.serve_until_stopped(stop)
        print("\nstopping durable dev ...", file=say, flush=True)
    print("stopped", file=say, flush=True)
    return 0
