"""`multi-step-example`: the seed's replay walk-through, step by step.

1. `fetch-user` succeeds and the task logs "Fetched user".
2. `charge` fails on the first attempt: the fake user's saved card is `tok_flaky`, whose
   first charge per idempotency key fails with a transient error. The step has no retry
   policy of its own, so the task attempt fails and the task-level policy
   (`max_attempts=3`) schedules attempt 2 through the queue.
3. Attempt 2 replays: `fetch-user` returns the logged user without touching the database,
   and the "Fetched user" line is not logged again (`ctx.logger` stays silent for code the
   run has already been through). `charge` runs again and succeeds; `mark-processed` runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, task
from tasks.fakes import payments, users


class MultiStepIn(BaseModel):
    user_id: str = Field(min_length=1)


@task(id="multi-step-example", retry=RetryPolicy(max_attempts=3))
def multi_step_example(ctx: Context, payload: MultiStepIn) -> dict[str, Any]:
    user: dict[str, Any] = ctx.step("fetch-user", users.get, payload.user_id)
    ctx.logger.info("Fetched user", email=user["email"])

    charge: dict[str, Any] = ctx.step(
        "charge",
        payments.charge,
        amount_cents=1000,
        currency="usd",
        source=user["card_token"],
        idempotency_key=f"{ctx.run.id}:charge",
    )
    ctx.logger.info("Charge result", charge_id=charge["id"])

    ctx.step("mark-processed", users.mark_processed, payload.user_id)
    return {"success": True, "charge_id": charge["id"]}
