"""The example tasks (user code). Importing `tasks` registers every one of them.

Each external service they call is a local fake from `tasks.fakes`.
"""

from tasks import (
    approval_gate,
    daily_report,
    multi_step_example,
    process_order,
    scrape_with_retries,
)

__all__ = [
    "approval_gate",
    "daily_report",
    "multi_step_example",
    "process_order",
    "scrape_with_retries",
]
