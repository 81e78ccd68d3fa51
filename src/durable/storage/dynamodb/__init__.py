"""`DynamoDBRunStore`: the `RunStore` port on one DynamoDB table, through PynamoDB.

Behaves exactly like `MemoryRunStore` (both pass `tests/contract`); the table layout is in
`durable.storage._tables`. Every state change is one conditional write, so DynamoDB itself
arbitrates between racing invocations:

    worker A                          DynamoDB                          worker B
    load_history -> 7 entries                                           load_history -> 7 entries
    put CP#0000000008  ─────────────► attribute_not_exists(sk): ok
                                      attribute_not_exists(sk): fails ◄─ put CP#0000000008
                                                                        ConflictError: B stops

The store is one class per record family, each in its module, on one shared table handle
(`table.DynamoTable`: the models, the shard count, the write counter); each module's
docstring says which requests its methods make:

    runs.py        create_run, get_run, acquire_lease, update_run
    log.py         append_checkpoint, load_history
    inbox.py       put_inbox, claim_event_id, list_inbox, delete_inbox
    listings.py    list_runs, due_runs
    retention.py   expired_runs, delete_run, claim_purge_lease, release_purge_lease
    callbacks.py   put_callback, claim_callback, callback_outcome
    batches.py     create_batch, get_batch, record_batch_result, list_batch_results
    stats.py       add_stats, read_stats, stats_task_ids, count_active (metrics counters)
    bulk.py        create_bulk_job, get_bulk_job, claim_bulk_job, save_bulk_job
    admission.py   take_rate_place, rate_head, advance_rate_head, debounced_run,
                   create_debounced_run, replace_pending_run (rate limits, debounce)
    timers.py      parked_timers, set_timer_parked
    slots.py       acquire_slot, release_slot, drop_holder, slot_holders, waiters... (queues)
    store.py       DynamoDBRunStore: all of them

Nothing but `durable.errors` escapes: PynamoDB and botocore errors are translated at the
edge (`translation`); records become items and back in `codecs`.
"""

from durable.storage.dynamodb.store import DynamoDBRunStore

__all__ = ["DynamoDBRunStore"]
