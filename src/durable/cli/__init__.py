"""The `durable` command.

    durable dev [--port 8000] [--tasks MODULE,...]      the whole stack on this machine
    durable trigger TASK_ID --payload JSON [--wait]      start a run (and wait for its end)
    durable runs [--task ID] [--status S] [--limit N]    list runs, newest first
    durable show RUN_ID [--history] [--table]            a run (and its checkpoint log)
    durable send-event RUN_ID NAME --data JSON           deliver an event to a waiting run
    durable cancel RUN_ID                                cancel a run
    durable resume RUN_ID                                let a held run go on (409: not held)
    durable retry|rerun RUN_ID                           retry an ended run in place; rerun it
    durable fork RUN_ID --from-step N|NAME               a new run copying its first N entries
    durable bulk cancel|retry|resume [--task T] ...      act on every matching run (a job)
    durable bulk show JOB_ID                             a bulk job's progress
    durable logs RUN_ID [--follow] [--json]              what a run logged (new lines as they come)
    durable stats [--json]                               queue, worker and run figures
    durable tasks [TASK_ID] [--json]                     the registered tasks (one in full)
    durable queues [NAME] [--json]                       the queues: limits, slots in use, waiting
    durable replay RUN_ID | --open | --history FILE      replay recorded histories against
                                                         today's code (exit 1: non-determinism)
    durable migrate [--table NAME] [--shards N]          bring a table made by an older
                                                         version to the current layout

The client verbs speak the HTTP API: to a running `durable dev` by default (`--url`,
`DURABLE_URL`, else http://127.0.0.1:8000), or, with `--aws` or when `AWS_REGION` and
`DURABLE_TABLE_NAME` are set (and no URL is given), to AWS directly: the same API code then
runs in this process on the DynamoDB/SQS/S3 adapters, so answers and errors are identical.

Exit codes: 0 done; 1 the run ended without completing (`trigger --wait`), a replay found
a divergence or a task missing from today's code (`replay`), or the server failed; 2 bad
input (invalid JSON, unknown task or run, refused payload, unreadable file) or no server.

The package: `console` (the parser and `main`), one module per command group (`dev`, `runs`,
`invoke`, `replay`, `migrate`), each adding its commands with `register`, on `transport` (how
the client commands reach the API; `CliError`) and `output` (JSON and tables).
"""

from durable.cli.console import build_parser, main

__all__ = ["build_parser", "main"]
