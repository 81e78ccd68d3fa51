"""`process-user` (version 2): the seed's versioning example, changed with `ctx.patched`.

Version 1 fetched the user, waited up to a week for them to verify their email address
and then marked them processed:

    user = ctx.step("fetch-user", users.get, payload.user_id)
    ctx.wait_for_event("email-verified", timeout=VERIFY_TIMEOUT)
    ctx.step("mark-processed", users.mark_processed, payload.user_id)

Version 2 sends a welcome email between the first two. Inserting the step plainly would
break every v1 run still waiting for its verification: its log holds the wait at operation
#1, the new code would ask for a step there, and the replay would stop with
`NonDeterminismError`. Instead the new step sits behind `ctx.patched("send-welcome-email")`:

- A run that reaches the patch point under v2 records a patch marker there and takes the
  new path, now and on every replay.
- A v1 run already past that point has another operation at that position in its log
  (the wait), so `patched` returns False: the replay takes the old path, the wait and
  `mark-processed` match the log, and the run finishes as v1 would have, with no email.

Once no v1 run is left (`durable runs --task process-user --status WAITING` is empty),
the `if` can go and the step stays. The run records `task_version` "2"; a deployment
serves runs of both versions with this one function.

The welcome email is `at_most_once`: the mail API cannot deduplicate, and a second welcome
email is worse than none. If the invocation dies after the step started, the step fails
with `CrashedAfterStartError` instead of sending again, and the run goes on without it. The task
itself is not retried (`max_attempts=1`): a task retry runs every operation from the first
one without a result again, and that would include a welcome email that failed this way.
The other steps retry on their own policies instead.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

from durable import Context, RetryPolicy, StepFailedError, WaitTimeoutError, task
from tasks.fakes import mail, users

VERIFY_TIMEOUT = timedelta(days=7)
STEP_RETRY = RetryPolicy(max_attempts=3)


class UserIn(BaseModel):
    user_id: str = Field(min_length=1)


class UserOut(BaseModel):
    user_id: str
    status: Literal["active", "unverified"]
    welcome_email: str | None = None  # the message id; None for runs started under v1


def welcome_text(user: dict[str, Any]) -> str:
    return f"Hello {user['email']}, welcome aboard! Please verify your email address."


@task(id="process-user", version="2", retry=RetryPolicy(max_attempts=1))
def process_user(ctx: Context, payload: UserIn) -> UserOut:
    user: dict[str, Any] = ctx.step("fetch-user", users.get, payload.user_id, retry=STEP_RETRY)
    welcome_email: str | None = None
    if ctx.patched("send-welcome-email"):  # v2; a v1 run past this point skips it
        try:
            sent: dict[str, Any] = ctx.step(
                "send-welcome-email",
                mail.send,
                to=user["email"],
                subject="Welcome!",
                body=welcome_text(user),
                semantics="at_most_once",
            )
            welcome_email = sent["id"]
        except StepFailedError as error:
            ctx.logger.warning("no welcome email", error=error.message)
    try:
        ctx.wait_for_event("email-verified", timeout=VERIFY_TIMEOUT)
    except WaitTimeoutError:
        return UserOut(user_id=payload.user_id, status="unverified", welcome_email=welcome_email)
    ctx.step("mark-processed", users.mark_processed, payload.user_id, retry=STEP_RETRY)
    return UserOut(user_id=payload.user_id, status="active", welcome_email=welcome_email)
