"""A live run's timeline polled as the run page polls it, on in-process moto: AWS requests,
request units and time per poll, from a cold client and from a warm one.

Run:  .venv/bin/python bench/timeline_poll.py [--entries 5000] [--large 5] [--polls 5]

The run is RUNNING with `--entries` log entries (completed steps with a small output each),
`--large` of them with a 300 KB output, in S3. Between two polls it writes two more entries
(a step and a sleep), as a live run does. Each poll is `Client.timeline`, the body of
`GET /runs/{id}/timeline`:

- cold: a new `Client` each poll, which is what every poll cost before the client kept what
  it read (the whole log read, every value in S3 fetched);
- warm: one `Client` for all the polls, as an API container serves them: its first poll
  reads all, each later one the run, the log's new entries and no S3 object
  (`durable.storage.log_cache`, `durable.blobs.cache`).

Printed: the median poll's DynamoDB requests, read request units (estimated from the item
sizes, as `overhead.py` does), S3 GetObjects and milliseconds, and the first warm poll's.
In-process moto answers one request at a time: the times say how the work scales, not
what DynamoDB and S3 answer in. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from request_tally import Tally, counting_aws_requests

from durable.client import Client
from durable.clock import VirtualClock
from durable.ids import new_run_id
from durable.queues.memory import MemoryWakeQueue
from durable.records import Checkpoint, CheckpointKind, RunRecord, RunStatus
from durable.storage.base import RunStore
from durable.testing import MotoBackend
from durable.values import ValueCodec

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LARGE = 300 * 1024


@dataclass
class Poll:
    tally: Tally
    ms: float
    timeline: dict[str, Any]


def _entry(codec: ValueCodec, run_id: str, seq: int, large: bool) -> Checkpoint:
    at = T0 + timedelta(seconds=seq)
    if seq % 2 == 0:  # a sleep between two steps
        return Checkpoint(
            seq=seq,
            kind=CheckpointKind.SLEEP_STARTED,
            op=seq - 1,
            name=f"pause-{seq}",
            task_attempt=1,
            at=at,
            wake_at=at + timedelta(seconds=1),
        )
    output = {"step": seq, "sku": f"sku-{seq:06d}", "price": 1999, "note": "ok"}
    if large:
        output["report"] = "r" * LARGE
    return Checkpoint(
        seq=seq,
        kind=CheckpointKind.STEP_COMPLETED,
        op=seq - 1,
        name=f"step-{seq}",
        task_attempt=1,
        at=at,
        value=codec.encode(output, f"{run_id}/step-{seq}"),
        started_at=at,
    )


def make_run(store: RunStore, codec: ValueCodec, entries: int, large: int) -> str:
    run_id = new_run_id(T0)
    store.create_run(
        RunRecord(
            run_id=run_id,
            task_id="bench-live",
            status=RunStatus.RUNNING,
            payload="null",
            created_at=T0,
            updated_at=T0,
            started_at=T0,
            attempt=1,
        )
    )
    steps = (entries + 1) // 2  # odd seqs are steps
    large_seqs = {1 + 2 * (k * steps // large) for k in range(large)} if large else set()
    for seq in range(1, entries + 1):
        store.append_checkpoint(run_id, _entry(codec, run_id, seq, seq in large_seqs))
    return run_id


def poll(client: Client, run_id: str) -> Poll:
    with counting_aws_requests() as tally:
        start = time.perf_counter()
        timeline = client.timeline(run_id)
        ms = (time.perf_counter() - start) * 1000
    return Poll(tally, ms, timeline)


def show(label: str, polls: list[Poll]) -> None:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    dynamodb = median([p.tally.total("dynamodb") for p in polls])
    rru = median([p.tally.rru for p in polls])
    objects = median([p.tally.calls["s3.GetObject"] for p in polls])
    ms = median([p.ms for p in polls])
    print(
        f"{label:<28} {dynamodb:>8.0f} DynamoDB requests  {rru:>8.1f} RRU  "
        f"{objects:>4.0f} S3 GetObject  {ms:>8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--large", type=int, default=5)
    parser.add_argument("--polls", type=int, default=5)
    args = parser.parse_args()

    with MotoBackend() as moto:
        store, blobs = moto.fresh()
        codec = ValueCodec(blobs)
        clock = VirtualClock(T0 + timedelta(hours=2))
        run_id = make_run(store, codec, args.entries, args.large)
        stored = [cp for cp in store.load_history(run_id) if (cp.value or "").startswith("@")]
        print(
            f"a RUNNING run with {args.entries} log entries, {len(stored)} outputs of "
            f"{LARGE // 1024} KB in S3; {args.polls} polls, two entries written between two"
        )

        def client() -> Client:
            return Client(store=store, queue=MemoryWakeQueue(clock), codec=codec, clock=clock)

        warm = client()
        cold_polls: list[Poll] = []
        warm_polls: list[Poll] = []
        first = poll(warm, run_id)
        seq, same = args.entries, True
        for _ in range(args.polls):
            for _ in range(2):
                seq += 1
                store.append_checkpoint(run_id, _entry(codec, run_id, seq, False))
            warm_polls.append(poll(warm, run_id))
            cold_polls.append(poll(client(), run_id))
            same = same and warm_polls[-1].timeline == cold_polls[-1].timeline
        show("cold (before), a poll", cold_polls)
        show("warm: its first poll", [first])
        show("warm (after), a poll", warm_polls)
        print(f"warm and cold timelines equal at every poll: {same}")


if __name__ == "__main__":
    main()
