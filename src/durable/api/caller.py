"""Who made an API request, as the run's audit entries record it.

API Gateway authorizes the request before it reaches us (`template.yaml`'s `AuthMode`): the
principal it names is the caller, `iam:<user ARN>` or `jwt:<sub claim>`. Without an
authorizer (`durable dev`, an `AuthMode` of NONE) nobody is authenticated: a client may say
who it is in the `X-Durable-Caller` header (the CLI sends `cli <user>@<host>`), recorded as
`unverified:<what it said>`, and a request that says nothing is `anonymous`. An
authenticated principal always wins over the header, so a header cannot impersonate anyone.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

CALLER_HEADER = "x-durable-caller"
# What an unverified caller may say: printable, and short enough for any audit entry.
MAX_DECLARED_CALLER = 128
ANONYMOUS = "anonymous"


def caller_of(app: APIGatewayHttpResolver) -> str:
    """The caller of the request `app` is serving (see the module's docstring)."""
    event = app.current_event
    authorizer = event.request_context.authorizer
    if authorizer is not None:
        user_arn = authorizer.iam.user_arn if authorizer.get("iam") else ""
        if user_arn:
            return f"iam:{user_arn}"
        subject = authorizer.jwt_claim.get("sub") if authorizer.get("jwt") else None
        if subject:
            return f"jwt:{subject}"
    declared = (event.headers or {}).get(CALLER_HEADER, "")
    declared = "".join(ch for ch in declared if ch.isprintable()).strip()
    if declared:
        return f"unverified:{declared[:MAX_DECLARED_CALLER]}"
    return ANONYMOUS
