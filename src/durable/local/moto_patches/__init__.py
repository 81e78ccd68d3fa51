"""Targeted patches of moto for the `durable dev` stack's moto server: `apply()` once, early.

Checked against moto 5.2.5 (`moto/dynamodb/models/__init__.py`, `models/table.py`,
`responses.py`, `moto_server/werkzeug_app.py`). Each patch keeps moto's observable
behaviour for the calls the project makes and removes a cost that grows with the table, so
a trigger costs the same on an empty table and on a full one. `apply()` refuses (and patches
nothing) when the moto installed is not the version they were checked against: a new
moto must be re-read first. `revert()` undoes them (tests).

The patches, numbered as they were added; each module's docstring explains its own:

- `transactions`: 1. one DynamoDB request at a time; 2. `TransactWriteItems` backing up
  the items it writes, not whole tables.
- `queries`: 3. a base-table `Query` reads one partition.
- `server`: 4. no Nagle delay; 5. a response class's method names computed once;
  6. the request counter (`GET /moto-api/durable/requests`); 9. moto's module list once.
- `sqs`: 5. a queue's retention period read alone; 11. the clock read cheaply;
  13. a send to a standard queue without every queue attribute.
- `expressions`: 7. update expressions parsed once per text; 8. the update validator's
  walks without per-node overhead; 12. condition expressions lexed once per text.
- `answers`: 10. DynamoDB answers serialized without moto's generic serializer.
- `logs`: 14. CloudWatch Logs' JSON equality filter (`{ $.run_id = "..." }`).
- `indexes`: 15. an index query's sort keys cast once per item; 16. an item projected
  onto top-level names converted to JSON once.
- `installer`: `apply()`, `revert()`, the version check; `originals`: what was replaced.
"""

from durable.local.moto_patches.expressions import LEXED_CONDITIONS_KEPT
from durable.local.moto_patches.expressions import _lexed_conditions as _lexed_conditions
from durable.local.moto_patches.installer import (
    CHECKED_MOTO_VERSION,
    MotoVersionError,
    applied,
    apply,
    revert,
)
from durable.local.moto_patches.server import COUNTER_PATH, request_counts
from durable.local.moto_patches.server import _operation as _operation

# `_operation` and `_lexed_conditions` are re-exported for the unit tests, which look inside.
__all__ = [
    "CHECKED_MOTO_VERSION",
    "COUNTER_PATH",
    "LEXED_CONDITIONS_KEPT",
    "MotoVersionError",
    "applied",
    "apply",
    "request_counts",
    "revert",
]
