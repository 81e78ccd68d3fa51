"""Local fakes of the outside services the example tasks call. None of them is a real service.

Each fake is deterministic and in-process, and keeps its state in a JSON file, one per fake,
under the directory named by `DURABLE_FAKES_DIR` (default: `.durable/fakes` in the working
directory, inside the state directory of a `durable dev` started there; `durable dev` sets
it to `<its state directory>/fakes` for its workers). The records of the busiest fakes
(payments, orders) are a file each, so a call costs the same with a million orders. They use
files rather than memory because `durable dev` runs each invocation in its own process. A
count such as "charged once" has to carry over from one invocation to the next, and an
end-to-end test can read it from its own process by pointing `DURABLE_FAKES_DIR` at the
same directory. Every read-modify-write holds an exclusive `flock`, so concurrent
invocations do not lose updates.

Knobs that inject failures are kept in the same files, so a test in another process can set
them too:

- `fail_next(n)` on `payments`, `metrics`, `extractor`, `ocr`, `llm` and `pricing`: the
  next n calls raise `ServiceUnavailable`.
- `carriers.take_down(name, ...)`: that carrier's quotes raise `ServiceUnavailable` until
  `carriers.reset()`.
- `payments.crash_after_next_charge()`: the next charge is recorded, then the invocation dies
  (`durable.testing.SimulatedCrash`) before the step can checkpoint its result.
  `mail.crash_after_next_send()` does the same after sending a message, and
  `warehouse.crash_after_batches(n)` after the n-th upsert from now.
- `orders.crash_before_next_update()`: the next order update dies before writing anything.
- The card token `tok_flaky` (like Stripe's test cards) fails the first charge for each
  idempotency key; a URL with `?fail=N` fails its first N fetches.
- Documents: the primary `extractor` refuses scanned images (`.png`, `.jpg`, ...) with
  `UnsupportedDocument`; `ocr` reads a document whose name contains `blurry` badly, and the
  `llm` is then less confident. Destinations in `CARLESS_DESTINATIONS` (Venice, Hydra) have
  no rental cars (`NoCarsAvailable`); `pricing` knows no SKU starting with `discontinued`
  (`UnknownSku`).

`reset_all()` (or `reset()` on one fake) forgets everything.

The package holds one module per service (the document-processing services share one), on
the plumbing of `tasks.fakes.base`; `tasks.fakes.instances` makes the instances the tasks use.
"""

from tasks.fakes.approval_desk import FakeApprovalDesk
from tasks.fakes.base import ServiceUnavailable, fakes_dir
from tasks.fakes.data_warehouse import FakeDataWarehouse
from tasks.fakes.document_processing import (
    SCANNED_SUFFIXES,
    FakeDocumentExtractor,
    FakeDocumentStore,
    FakeLLM,
    FakeOCRService,
    FakeReviewQueue,
    UnsupportedDocument,
    document_fields,
)
from tasks.fakes.instances import (
    ALL_FAKES,
    approvals,
    carriers,
    documents,
    exports,
    extractor,
    llm,
    mail,
    metrics,
    ocr,
    orders,
    payments,
    pricing,
    reports,
    reset_all,
    reviews,
    travel,
    users,
    warehouse,
    website,
)
from tasks.fakes.mailer import FakeMailer
from tasks.fakes.metrics_source import FakeMetricsSource
from tasks.fakes.order_database import FakeOrderDatabase
from tasks.fakes.parcel_carriers import CARRIERS, FakeCarriers
from tasks.fakes.payment_provider import FLAKY_CARD, GOOD_CARD, FakePaymentProvider
from tasks.fakes.pricing_service import FakePricingService, UnknownSku
from tasks.fakes.report_store import FakeReportStore
from tasks.fakes.row_export import FakeRowExport
from tasks.fakes.travel_agency import CARLESS_DESTINATIONS, FakeTravelAgency, NoCarsAvailable
from tasks.fakes.user_database import FakeUserDatabase
from tasks.fakes.web import FakeWebsite

__all__ = [
    "ALL_FAKES",
    "CARLESS_DESTINATIONS",
    "CARRIERS",
    "FLAKY_CARD",
    "GOOD_CARD",
    "SCANNED_SUFFIXES",
    "FakeApprovalDesk",
    "FakeCarriers",
    "FakeDataWarehouse",
    "FakeDocumentExtractor",
    "FakeDocumentStore",
    "FakeLLM",
    "FakeMailer",
    "FakeMetricsSource",
    "FakeOCRService",
    "FakeOrderDatabase",
    "FakePaymentProvider",
    "FakePricingService",
    "FakeReportStore",
    "FakeReviewQueue",
    "FakeRowExport",
    "FakeTravelAgency",
    "FakeUserDatabase",
    "FakeWebsite",
    "NoCarsAvailable",
    "ServiceUnavailable",
    "UnknownSku",
    "UnsupportedDocument",
    "approvals",
    "carriers",
    "document_fields",
    "documents",
    "exports",
    "extractor",
    "fakes_dir",
    "llm",
    "mail",
    "metrics",
    "ocr",
    "orders",
    "payments",
    "pricing",
    "reports",
    "reset_all",
    "reviews",
    "travel",
    "users",
    "warehouse",
    "website",
]
