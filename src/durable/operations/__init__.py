"""The durable operations: one module per kind of call a task makes on its context.

Each module owns its log entries, its replay rule (what a recorded entry answers), its
fresh execution and its checkpoint; all of them stand on `attempt.Attempt`, which keeps the
position bookkeeping (the next operation's position, the next log slot, replay or fresh).
`durable.context` is the facade task code sees; it holds no logic of its own.

    attempt.py       the shared base: positions, log slots, fresh-operation checks, suspending
    observer.py      the optional hook telemetry stands on: replayed operations, step attempts
    steps.py         ctx.step, @step, retries, timeouts, lost attempts
    step_input.py    a fresh step attempt's input preview: its arguments as bounded JSON
    heartbeats.py    ctx.heartbeat, ctx.step_id, ctx.heartbeat_details (inside a step)
    compensation.py  ctx.compensate: completed steps' undo functions, newest first
    sleeps.py        ctx.sleep, ctx.sleep_until
    events.py        ctx.wait_for_event
    callbacks.py     ctx.create_callback, ctx.wait_for_callback
    children.py      ctx.invoke, ctx.trigger
    fanout.py        ctx.map, ctx.parallel
    patching.py      ctx.patched
    recorded.py      ctx.now, ctx.random, ctx.uuid4
"""
