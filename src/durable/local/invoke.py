"""The inside of one local Lambda container: `python -m durable.local.invoke HANDLER ...`.

`durable dev` starts a few of these processes (see `durable.local.containers`) and sends
each invocation to an idle one, as Lambda reuses a warm execution environment. A process
runs one invocation at a time and is never shared by two, so a crash (`os._exit`, a
segfault) or a kill on timeout ends that invocation only.

Protocol, JSON over two inherited pipes (framed by `multiprocessing.connection`; the
process's stdout and stderr stay free for the user's prints and logs):

    child  ─► {"kind": "ready"} | {"kind": "init_error", "error": traceback}
    parent ─► {"event": {...}, "time_limit": seconds, "request_id": str}
    child  ─► {"kind": "ok", "response": ...} | {"kind": "error", "error": traceback}

The parent closing its end (or dying) ends the process; so does the parent's death while
an invocation runs (a watcher thread), so a killed `durable dev` leaves no orphans.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, cast

Handler = Callable[[dict[str, Any], Any], Any]


def load_handler(spec: str) -> Handler:
    """The function named by `module.path:function` (or `module.path.function`)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep:
        module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"handler must look like 'module:function', not {spec!r}")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise TypeError(f"{spec} is not callable")
    return cast(Handler, handler)


def send(connection: Connection, message: dict[str, Any]) -> None:
    connection.send_bytes(json.dumps(message, default=str).encode("utf-8"))


def receive(connection: Connection) -> Any:
    return json.loads(connection.recv_bytes().decode("utf-8"))


def _exit_with_parent() -> None:
    """Die when the parent does, even in the middle of an invocation."""
    # Not prctl(PR_SET_PDEATHSIG): it fires when the *thread* that started us ends, and
    # the dev server starts replacement containers from short-lived threads.
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm_up() -> None:
    """Build the runtime now, as a Lambda container's init phase would, not in the 1st call."""
    from durable.bootstrap import get_runtime

    get_runtime()


def serve(handler_spec: str, inbox: Connection, outbox: Connection, function_name: str) -> int:
    """Run invocations from `inbox` until it closes; returns the exit code."""
    from durable.local.lambda_context import LocalLambdaContext

    try:
        handler = load_handler(handler_spec)
        _warm_up()
    except BaseException:
        send(outbox, {"kind": "init_error", "error": traceback.format_exc()})
        return 1
    send(outbox, {"kind": "ready"})
    while True:
        try:
            job = receive(inbox)
        except (EOFError, OSError):
            return 0
        if job is None:
            return 0
        context = LocalLambdaContext(
            function_name, float(job["time_limit"]), request_id=job.get("request_id")
        )
        try:
            response = handler(job["event"], context)
        except Exception:
            reply: dict[str, Any] = {"kind": "error", "error": traceback.format_exc()}
        else:
            reply = {"kind": "ok", "response": response}
        sys.stdout.flush()
        sys.stderr.flush()
        send(outbox, reply)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m durable.local.invoke")
    parser.add_argument("handler", help="module:function of the Lambda handler")
    parser.add_argument("--read-fd", type=int, required=True)
    parser.add_argument("--write-fd", type=int, required=True)
    parser.add_argument("--function-name", default="durable-worker")
    args = parser.parse_args(argv)
    # Ctrl-C in the terminal reaches the whole process group: the dev server decides
    # when its containers stop, not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    inbox = Connection(args.read_fd, writable=False)
    outbox = Connection(args.write_fd, readable=False)
    return serve(args.handler, inbox, outbox, args.function_name)


if __name__ == "__main__":
    sys.exit(main())
