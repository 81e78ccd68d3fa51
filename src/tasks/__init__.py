"""The example tasks (user code). Importing `tasks` registers every one of them.

Each external service they call is a local fake from `tasks.fakes`.
"""

from tasks import (
    approval_gate,
    book_trip,
    daily_report,
    extract_document,
    import_rows,
    multi_step_example,
    price_catalog,
    process_batch,
    process_order,
    process_user,
    scrape_with_retries,
)

__all__ = [
    "approval_gate",
    "book_trip",
    "daily_report",
    "extract_document",
    "import_rows",
    "multi_step_example",
    "price_catalog",
    "process_batch",
    "process_order",
    "process_user",
    "scrape_with_retries",
]
