"""The one instance of each fake that the example tasks use; tests read their state and turn
their knobs. `reset_all()` forgets the state of every one."""

from __future__ import annotations

from tasks.fakes.approval_desk import FakeApprovalDesk
from tasks.fakes.base import Fake
from tasks.fakes.data_warehouse import FakeDataWarehouse
from tasks.fakes.document_processing import (
    FakeDocumentExtractor,
    FakeDocumentStore,
    FakeLLM,
    FakeOCRService,
    FakeReviewQueue,
)
from tasks.fakes.mailer import FakeMailer
from tasks.fakes.metrics_source import FakeMetricsSource
from tasks.fakes.order_database import FakeOrderDatabase
from tasks.fakes.parcel_carriers import FakeCarriers
from tasks.fakes.payment_provider import FakePaymentProvider
from tasks.fakes.pricing_service import FakePricingService
from tasks.fakes.report_store import FakeReportStore
from tasks.fakes.row_export import FakeRowExport
from tasks.fakes.travel_agency import FakeTravelAgency
from tasks.fakes.user_database import FakeUserDatabase
from tasks.fakes.web import FakeWebsite

payments = FakePaymentProvider()
orders = FakeOrderDatabase()
users = FakeUserDatabase()
website = FakeWebsite()
metrics = FakeMetricsSource()
reports = FakeReportStore()
approvals = FakeApprovalDesk()
mail = FakeMailer()
extractor = FakeDocumentExtractor()
ocr = FakeOCRService()
llm = FakeLLM()
reviews = FakeReviewQueue()
documents = FakeDocumentStore()
travel = FakeTravelAgency()
pricing = FakePricingService()
exports = FakeRowExport()
warehouse = FakeDataWarehouse()
carriers = FakeCarriers()

ALL_FAKES: tuple[Fake, ...] = (
    payments,
    orders,
    users,
    website,
    metrics,
    reports,
    approvals,
    mail,
    extractor,
    ocr,
    llm,
    reviews,
    documents,
    travel,
    pricing,
    exports,
    warehouse,
    carriers,
)


def reset_all() -> None:
    """Forget the state of every fake."""
    for fake in ALL_FAKES:
        fake.reset()
