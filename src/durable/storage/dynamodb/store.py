"""`DynamoDBRunStore`: the record families of the DynamoDB store, as one `RunStore`."""

from __future__ import annotations

from durable.aws import endpoint_url, region_name
from durable.settings import Settings
from durable.storage.dynamodb.admission import DynamoAdmissions
from durable.storage.dynamodb.batches import DynamoBatches
from durable.storage.dynamodb.bulk import DynamoBulkJobs
from durable.storage.dynamodb.callbacks import DynamoCallbacks
from durable.storage.dynamodb.inbox import DynamoInbox
from durable.storage.dynamodb.listings import DynamoListings
from durable.storage.dynamodb.log import DynamoRunLog
from durable.storage.dynamodb.retention import DynamoRetention
from durable.storage.dynamodb.runs import DynamoRunRecords
from durable.storage.dynamodb.slots import DynamoQueueSlots
from durable.storage.dynamodb.stats import DynamoRunStats
from durable.storage.dynamodb.timers import DynamoParkedTimers


class DynamoDBRunStore(
    DynamoAdmissions,  # a DynamoRunRecords: first, for the method order
    DynamoRunRecords,
    DynamoRunLog,
    DynamoInbox,
    DynamoListings,
    DynamoRetention,
    DynamoCallbacks,
    DynamoBatches,
    DynamoRunStats,
    DynamoBulkJobs,
    DynamoParkedTimers,
    DynamoQueueSlots,
):
    """Runs, logs and inboxes in one DynamoDB table (see `durable.storage._tables`).

    Each base keeps one record family (`durable.storage.dynamodb`); they share the table
    handle, `DynamoTable`, whose constructor this is. `page_size` caps the items per query
    request (DynamoDB's own cap is 1 MB); the store always pages through to the end, so it
    only matters for tests and tuning.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDBRunStore:
        return cls(
            settings.table_name,
            region=region_name(settings),
            endpoint_url=endpoint_url(settings, "dynamodb"),
        )
