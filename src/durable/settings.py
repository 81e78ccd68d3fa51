"""Configuration: one pydantic-settings model read from `DURABLE_*` environment variables.

Defaults make `durable dev` and the test kit work with nothing set.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where the durable runtime keeps its state and which tasks it serves."""

    model_config = SettingsConfigDict(env_prefix="DURABLE_", extra="ignore")

    table_name: str = "durable-runs"
    queue_url: str = ""
    queue_name: str = "durable-wakeups"
    bucket_name: str = "durable-values"
    task_modules: str = Field(default="tasks", description="comma-separated modules to import")
    code_version: str = "dev"
    version_routes: dict[str, str] = Field(
        default_factory=dict,
        description="JSON: code version -> Lambda function (version or alias ARN) that runs it",
    )
    region: str = Field(default="us-east-1")
    endpoint_url: str | None = Field(
        default=None, description="AWS endpoint (moto); AWS_ENDPOINT_URL is honoured too"
    )
    lease_seconds: float = Field(
        default=900.0, description="how long an invocation may hold a run (Lambda's timeout)"
    )
    invocation_margin_seconds: float = Field(
        default=10.0, description="hand over to a new invocation when this little time is left"
    )
    sweep_grace_seconds: float = 60.0
    # At most the sweeper's purge settle time (an hour): a firing's idempotency key must
    # outlive the window in which a sweep could fire the same instant again.
    schedule_lookback_seconds: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="a scheduled instant missed by a late sweep still fires if this recent",
    )
    log_group: str = Field(
        default="/aws/lambda/durable-worker",
        description="the worker function's CloudWatch log group: where a run's logs are read",
    )
    retention_days: float = Field(
        default=30.0,
        ge=0,
        description="days a finished run (its log, inbox and idempotency key) is kept; 0 = forever",
    )
    hold_recheck_seconds: float = Field(
        default=300.0,
        gt=0,
        description="how often a run held for a code fix is looked at again (one read and "
        "one write, no replay, until other code is deployed)",
    )
    idempotency_ttl_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="how long an idempotency key given to a trigger holds (its run found "
        "again) unless the trigger says otherwise; after it the key starts a new run",
    )

    worker_max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="how many worker invocations may run at once (the SQS event source "
        "mapping's MaximumConcurrency; `durable dev`'s pool size): the metrics' worker limit",
    )

    @field_validator("endpoint_url", mode="before")
    @classmethod
    def _empty_endpoint_is_aws(cls, value: object) -> object:
        """An empty DURABLE_ENDPOINT_URL (template.yaml's default) means AWS's own endpoint."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def retention(self) -> timedelta | None:
        """How long finished runs are kept; None keeps them forever."""
        return timedelta(days=self.retention_days) if self.retention_days > 0 else None

    @property
    def hold_recheck(self) -> timedelta:
        """How often a held run is looked at again (`WorkerConfig.hold_recheck`)."""
        return timedelta(seconds=self.hold_recheck_seconds)

    @property
    def idempotency_key_ttl(self) -> timedelta:
        """The default lifetime of a trigger's idempotency key."""
        return timedelta(seconds=self.idempotency_ttl_seconds)

    @property
    def schedule_lookback(self) -> timedelta:
        """How far back each sweep fires scheduled instants it has not fired yet."""
        return timedelta(seconds=self.schedule_lookback_seconds)

    @property
    def task_module_list(self) -> list[str]:
        return [name.strip() for name in self.task_modules.split(",") if name.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (cached per container)."""
    return Settings()
