"""moto as `durable dev`'s AWS: its own process, its state kept on disk across restarts.

    python -m durable.local.moto_server --state-dir .durable [--host H] [--port P]

moto keeps everything in memory. This server puts a journal in front of it:

    request ─► one lock ─► moto ─► ok and a write? ─► append to the journal ─► fsync ─► reply

- Every request that changes state and succeeded is appended to `journal-N.log` and the file
  is synced before the reply leaves: a write the caller saw acknowledged is on disk. A write
  that failed (a condition that did not hold) changed nothing and is not recorded.
- Requests go through moto one at a time, so the journal's order is the order moto applied
  them in (replaying it rebuilds the same state), and moto's conditional writes, which are
  not atomic across threads, become so. SQS long polls wait outside the lock.
- SQS messages are journaled by what they are (sent, deleted, purged) rather than as raw
  requests: receipt handles and visibility are not replayable. On restart every message that
  was not deleted is queued again, with what is left of its delay; one that was in flight is
  visible at once (whoever held it is gone). Receive counts start again from one.
- At start the state is rebuilt from `snapshot-N` and `journal-N`, then written out as
  `snapshot-N+1` (each table's items, each bucket's objects, each queue and its messages,
  through moto's own API) with an empty `journal-N+1`, and the old pair is deleted. The
  journal is compacted the same way while running once it passes `COMPACT_BYTES`.
- A record cut short by a kill is ignored: it was never acknowledged.

The process exits when its standard input closes, so it never outlives the `durable dev` that
started it, even one killed with SIGKILL. A lock file keeps two servers off one directory.

The files are `durable.local.moto_journal`'s, the requests `durable.local.moto_requests`',
and a snapshot's records come from `durable.local.moto_dump`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from durable.local.moto_dump import dump
from durable.local.moto_journal import (
    Journal,
    StateDirectoryBusy,
    lock_state_directory,
    read_records,
    sync_directory,
    write_records,
)
from durable.local.moto_requests import (
    BACKGROUND_APP_ID,
    QueuedMessage,
    Request,
    Response,
    queue_name,
    replayable_environ,
    synthetic_request,
)
from durable.local.moto_turns import TurnLock

# The journal is compacted while running once it grows past this.
COMPACT_BYTES = 256 * 1024 * 1024
# A long poll looks at the queue again at least this often (sends wake it at once).
POLL_STEP_SECONDS = 0.2
DYNAMODB_READS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "DescribeTable",
        "ListTables",
        "DescribeTimeToLive",
        "DescribeContinuousBackups",
        "ListTagsOfResource",
        "DescribeEndpoints",
        "DescribeLimits",
    }
)
SQS_UNRECORDED = frozenset(
    {
        "ReceiveMessage",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListQueues",
        "ListQueueTags",
        "ListDeadLetterSourceQueues",
    }
)

log = logging.getLogger("durable.moto")


# -- the server -------------------------------------------------------------------------


def _from_background(environ: dict[str, Any]) -> bool:
    """Whether a request comes from a worker process (see `TurnLock`)."""
    return f"app/{BACKGROUND_APP_ID}" in environ.get("HTTP_USER_AGENT", "")


class DurableMoto:
    """A WSGI application: moto, one request at a time, with its writes journaled."""

    def __init__(self, state_dir: Path | None) -> None:
        from moto.server import (  # type: ignore[attr-defined]  # moto exports it untyped
            DomainDispatcherApplication,
            create_backend_app,
        )

        try:  # the dev stack's fixes to moto, where there are any
            from durable.local import moto_patches  # type: ignore[attr-defined,unused-ignore]  # absent in some builds

            moto_patches.apply()
        except ImportError:
            pass
        self._app: Callable[..., Iterable[bytes]] = DomainDispatcherApplication(create_backend_app)
        self._lock = TurnLock()
        self._arrivals = threading.Condition(threading.Lock())
        self._state_dir = state_dir
        self._journal: Journal | None = None
        self._generation = 0
        # Messages sent and not deleted, by (queue name, message id), and receipt handles.
        self._messages: dict[tuple[str, str], QueuedMessage] = {}
        self._receipts: dict[str, tuple[str, str]] = {}
        self._compacting = False
        self.requests = 0
        self.restored_records = 0

    # -- state on disk ------------------------------------------------------------------

    def restore(self) -> None:
        """Rebuild the state from the newest snapshot and its journal, then compact."""
        assert self._state_dir is not None
        self._state_dir.mkdir(parents=True, exist_ok=True)
        generations = sorted(
            int(path.stem.split("-")[1]) for path in self._state_dir.glob("snapshot-*.bin")
        )
        if generations:
            self._generation = generations[-1]
            snapshot = self._snapshot_path(self._generation)
            records = list(read_records(snapshot))
            if not records or records[-1].get("kind") != "end":
                raise RuntimeError(f"{snapshot} is incomplete; move it away to start afresh")
            for record in records[:-1]:
                self._replay(record)
                self.restored_records += 1
        for record in read_records(self._journal_path(self._generation)):
            self._replay(record)
            self.restored_records += 1
        self._requeue_messages()
        self._compact()

    def _snapshot_path(self, generation: int) -> Path:
        assert self._state_dir is not None
        return self._state_dir / f"snapshot-{generation}.bin"

    def _journal_path(self, generation: int) -> Path:
        assert self._state_dir is not None
        return self._state_dir / f"journal-{generation}.log"

    def _compact(self) -> None:
        """Write the whole state as the next snapshot, start its empty journal, drop the old."""
        assert self._state_dir is not None
        with self._lock:
            old = self._generation
            if self._journal is not None:
                self._journal.close()
            new = old + 1
            write_records(self._snapshot_path(new), self._dump())
            self._journal = Journal(self._journal_path(new))
            sync_directory(self._state_dir)
            self._generation = new
            for stale in (self._snapshot_path(old), self._journal_path(old)):
                stale.unlink(missing_ok=True)

    def _replay(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "raw":
            response = self._call(Request(dict(record["environ"]), record["body"]))
            if not response.ok:
                log.warning("replaying a journaled request failed: %s", response.body[:300])
        elif kind == "sqs_send":
            key = (record["queue"], record["id"])
            self._messages[key] = QueuedMessage(
                record["queue"], record["body"], record["attributes"], record["visible_at"]
            )
        elif kind == "sqs_delete":
            self._messages.pop((record["queue"], record["id"]), None)
        elif kind == "sqs_purge":
            for key in [key for key in self._messages if key[0] == record["queue"]]:
                del self._messages[key]

    def _requeue_messages(self) -> None:
        """Queue every message that was not deleted again (they get new ids)."""
        pending = sorted(self._messages.values(), key=lambda message: message.visible_at)
        self._messages.clear()
        now = time.time()
        for message in pending:
            body: dict[str, Any] = {
                "QueueUrl": f"http://localhost:5000/123456789012/{message.queue}",
                "MessageBody": message.body,
                "DelaySeconds": max(0, min(900, int(message.visible_at - now + 0.999))),
            }
            if message.attributes:
                body["MessageAttributes"] = message.attributes
            request = synthetic_request(
                "sqs", target="AmazonSQS.SendMessage", body=json.dumps(body).encode()
            )
            response = self._call(request)
            if response.ok:
                sent = response.json()
                self._messages[(message.queue, sent["MessageId"])] = message

    def _dump(self) -> Iterator[dict[str, Any]]:
        """The whole state, as records that rebuild it."""
        return dump(self._call, self._messages)

    # -- serving ------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        request = Request(replayable_environ(environ), body)
        self.requests += 1
        urgent = not _from_background(environ)
        if request.service == "sqs" and request.target == "ReceiveMessage":
            response = self._long_poll(request, urgent)
        else:
            with self._lock.turn(urgent):
                response = self._call(request)
                if response.ok:
                    self._record(request, response)
            if request.service == "sqs" and request.target in (
                "SendMessage",
                "SendMessageBatch",
                "ChangeMessageVisibility",
                "ChangeMessageVisibilityBatch",
            ):
                with self._arrivals:
                    self._arrivals.notify_all()
        start_response(response.status, response.headers)
        return [response.body]

    def _call(self, request: Request) -> Response:
        """Hand one request to moto and collect its whole reply."""
        environ = dict(request.environ)
        environ["wsgi.input"] = io.BytesIO(request.body)
        environ["CONTENT_LENGTH"] = str(len(request.body))
        environ.setdefault("wsgi.url_scheme", "http")
        environ.setdefault("wsgi.errors", sys.stderr)
        environ.setdefault("wsgi.multithread", True)
        environ.setdefault("wsgi.multiprocess", False)
        environ.setdefault("wsgi.run_once", False)
        environ.setdefault("wsgi.version", (1, 0))
        started: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started["status"] = status
            started["headers"] = headers
            return lambda data: None

        chunks = self._app(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        headers = [
            (name, value) for name, value in started["headers"] if name.lower() != "content-length"
        ]
        headers.append(("Content-Length", str(len(body))))
        return Response(started["status"], headers, body)

    def _long_poll(self, request: Request, urgent: bool) -> Response:
        """ReceiveMessage, waiting outside the lock (moto's own wait would hold it)."""
        parameters = request.json()
        wait = float(parameters.get("WaitTimeSeconds") or 0)
        parameters["WaitTimeSeconds"] = 0
        immediate = Request(request.environ, json.dumps(parameters).encode())
        deadline = time.monotonic() + wait
        while True:
            with self._lock.turn(urgent):
                response = self._call(immediate)
                messages = response.json().get("Messages", []) if response.ok else []
                queue = queue_name(parameters.get("QueueUrl", ""))
                for message in messages:
                    self._receipts[message["ReceiptHandle"]] = (queue, message["MessageId"])
            left = deadline - time.monotonic()
            if messages or not response.ok or left <= 0:
                return response
            with self._arrivals:
                self._arrivals.wait(min(left, POLL_STEP_SECONDS))

    def _record(self, request: Request, response: Response) -> None:
        """Journal a request that succeeded, if it changed anything (lock held)."""
        if self._journal is None:
            return  # memory only
        journal = self._journal
        service = request.service
        if service == "dynamodb":
            if request.target not in DYNAMODB_READS:
                journal.append(request.to_record())
        elif service == "sqs":
            if request.target == "":
                log.warning("an SQS request in the query protocol is not kept across restarts")
            elif request.target not in SQS_UNRECORDED:
                self._track_messages(request, response, journal.append)
        elif service == "logs":
            pass  # the workers' lines (`durable.local.log_shipper`) live in memory only
        elif request.environ.get("REQUEST_METHOD") not in ("GET", "HEAD", "OPTIONS"):
            journal.append(request.to_record())
        if journal.size > COMPACT_BYTES and not self._compacting:
            self._compacting = True
            try:
                self._compact()
            finally:
                self._compacting = False

    def _track_messages(
        self, request: Request, response: Response, append: Callable[[dict[str, Any]], None]
    ) -> None:
        target = request.target
        parameters = request.json()
        queue = queue_name(parameters.get("QueueUrl", ""))
        if target == "SendMessage":
            sent = [(parameters, response.json().get("MessageId"))]
        elif target == "SendMessageBatch":
            ids = {item["Id"]: item["MessageId"] for item in response.json().get("Successful", [])}
            sent = [(entry, ids.get(entry["Id"])) for entry in parameters.get("Entries", [])]
        elif target == "DeleteMessage":
            self._forget(queue, [parameters.get("ReceiptHandle", "")], append)
            return
        elif target == "DeleteMessageBatch":
            deleted = {item["Id"] for item in response.json().get("Successful", [])}
            handles = [
                entry["ReceiptHandle"]
                for entry in parameters.get("Entries", [])
                if entry["Id"] in deleted
            ]
            self._forget(queue, handles, append)
            return
        elif target == "PurgeQueue":
            append({"kind": "sqs_purge", "queue": queue})
            for key in [key for key in self._messages if key[0] == queue]:
                del self._messages[key]
            return
        else:  # CreateQueue, SetQueueAttributes, DeleteQueue, tags: replayed as they came
            append(request.to_record())
            return
        now = time.time()
        for entry, message_id in sent:
            if message_id is None:
                continue
            message = QueuedMessage(
                queue=queue,
                body=entry["MessageBody"],
                attributes=entry.get("MessageAttributes") or {},
                visible_at=now + float(entry.get("DelaySeconds") or 0),
            )
            self._messages[(queue, message_id)] = message
            append(
                {
                    "kind": "sqs_send",
                    "queue": queue,
                    "id": message_id,
                    "body": message.body,
                    "attributes": message.attributes,
                    "visible_at": message.visible_at,
                }
            )

    def _forget(
        self, queue: str, handles: list[str], append: Callable[[dict[str, Any]], None]
    ) -> None:
        for handle in handles:
            known = self._receipts.pop(handle, None)
            if known is None:
                continue
            if self._messages.pop(known, None) is not None:
                append({"kind": "sqs_delete", "queue": known[0], "id": known[1]})
            for other in [h for h, key in self._receipts.items() if key == known]:
                del self._receipts[other]


# -- the process ------------------------------------------------------------------------


def _exit_when_parent_goes() -> None:
    """Standard input is a pipe from the parent: its end (the parent died) ends us too."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    from durable.local.wsgi_server import KeepAliveServer

    parser = argparse.ArgumentParser(prog="python -m durable.local.moto_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, help="keep the state here (none: memory only)")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="moto    %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.watch_stdin:
        _exit_when_parent_goes()
    state_dir: Path | None = args.state_dir
    lock: BinaryIO | None = None  # held (open) for as long as this process serves
    if state_dir is not None:
        try:
            lock = lock_state_directory(state_dir)
        except StateDirectoryBusy as exc:
            print(json.dumps({"error": str(exc)}), flush=True)
            return 2
    application = DurableMoto(state_dir)
    started = time.monotonic()
    if state_dir is not None:
        application.restore()
    # Connections kept alive, one thread each (werkzeug's server closes every one).
    server = KeepAliveServer((args.host, args.port), application)
    host, port = server.server_address[:2]
    print(
        json.dumps(
            {
                "port": port,
                "host": host,
                "restored_records": application.restored_records,
                "restore_seconds": round(time.monotonic() - started, 3),
            }
        ),
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    if lock is not None:
        lock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
