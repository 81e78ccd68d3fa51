"""The run services: what happens to runs outside an attempt, on the ports alone.

    runs.py       starting a run (validation, idempotency keys, its first wake-up)
    batches.py    a fan-out's bookkeeping: recording children's ends, starting the next
    endings.py    a run's end and its follow-ups: parent, batch, children; cancelling
    delivery.py   events and callback completions into a run's inbox, then its wake-up
    schedules.py  firing `@task(cron=...)` instants, exactly once each
    sweeper.py    re-sending lost wake-ups, and sending the purge of expired runs
    timers.py     far wake-ups parked in the store, handed off by the sweeper on time
    purge.py      deleting runs past their retention, shard by shard
    bulk.py       bulk jobs: cancel (retry, resume) every run a filter matches, page by page
    stats.py      counting runs per task (best effort), and the figures of GET /metrics

They import the engine's vocabulary (records, errors, ports, task registry) and each
other, never the worker, the client or the composition roots above them.
"""
