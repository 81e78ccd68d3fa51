"""The worker: one wake-up message in, one invocation of a run out.

    wakeups.py     `Worker`: drop stale messages, lease, load the log, execute, persist
    invocation.py  one invocation's hold on its run: the attempt's window on storage
    waits.py       whether what a waiting run waits for has happened
    versions.py    runs pinned to another code version: routed, or held visibly
    holds.py       runs held for a code fix (a divergence, an unknown task), rechecked
    config.py      `Handled` (what was done with a message) and `WorkerConfig`
    redelivery.py  SQS's redelivery backoff for a failed wake-up (Powertools' batch processor)
    report.py      what an invocation did, in figures (`Worker.process`), for telemetry

It stands on the engine (`durable.engine`) and the run services (`durable.services`);
the composition roots (`durable.bootstrap`, `durable.testing`) build it.
"""

from durable.worker.config import Handled, WorkerConfig
from durable.worker.wakeups import Worker

__all__ = ["Handled", "Worker", "WorkerConfig"]
