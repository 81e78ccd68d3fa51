"""Fault injection for the test kit: throttling, 5xx, transaction conflicts, timeouts, crashes.

`Faults` decides, call by call, what happens to each AWS call the runtime makes: nothing,
an injected infrastructure error, or a crash of the whole process (`SimulatedCrash`)
before or after the call. `TestEnvironment(faults=...)` applies it where production would
meet it:

- on the moto backend, at botocore's `BaseClient._make_api_call`, which sits *above*
  botocore's own retries: an injected throttle is one that outlasted them, and it reaches
  the adapters as the `ClientError` (or `ReadTimeoutError`) AWS would send;
- on the memory backend, at the store, queue and blob adapters' methods, as the
  `InfrastructureError` the AWS adapters would have translated it into.

    faults = Faults(seed=7).throttle("dynamodb", 0.10).server_error("sqs", 0.05)
    with TestEnvironment(backend="moto", faults=faults) as env:
        ...                                  # every AWS call may now fail, as in production
        with faults.paused():                # look at the result without faults
            ...

Users test their own tasks against the same faults: no run may be lost, failed or run twice
because of them.
"""

from __future__ import annotations

import random  # noqa: TID251 - faults are drawn by a seeded generator, not a task
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from durable.errors import InfrastructureError

FaultKind = Literal["throttle", "server_error", "conflict", "timeout"]
When = Literal["before", "after"]

# What AWS answers when it throttles, per service (and what botocore gives up with).
_THROTTLE_CODES = {
    "dynamodb": "ProvisionedThroughputExceededException",
    "sqs": "RequestThrottled",
    "s3": "SlowDown",
}


class SimulatedCrash(BaseException):
    """Raise from a step (or inject with `Faults.crash`) to kill the invocation, as a power
    cut or `os._exit` would: nothing after it runs, not even `except Exception` handlers."""


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Inject `kind` into a share `rate` of the calls to `service` (any when None), limited
    to `operations` when given (botocore names such as `PutItem` on moto, adapter method
    names such as `append_checkpoint` on the memory backend)."""

    kind: FaultKind
    rate: float
    service: str | None = None
    operations: frozenset[str] | None = None
    times: int | None = None  # inject at most this many times (None: no limit)

    def applies(self, service: str, operation: str) -> bool:
        return (self.service is None or self.service == service) and (
            self.operations is None or operation in self.operations
        )


@dataclass(frozen=True, slots=True)
class Call:
    """One AWS call as `Faults` saw it, and what it did to it."""

    number: int
    service: str
    operation: str
    injected: str | None = None


class Faults:
    """What goes wrong with AWS calls: random faults by rule, and crashes at chosen calls."""

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._rules: list[FaultRule] = []
        self._left: dict[int, int] = {}  # rule index -> injections left, for limited rules
        self._crashes: dict[int, When] = {}
        self._lock = threading.RLock()
        self._paused = 0
        self.calls = 0  # AWS calls seen while not paused
        self.log: list[Call] = []
        self.injected: Counter[str] = Counter()  # "dynamodb:throttle" -> how many

    # -- what to inject ---------------------------------------------------------------------

    def throttle(
        self,
        service: str | None = None,
        rate: float = 0.1,
        operations: set[str] | None = None,
        times: int | None = None,
    ) -> Faults:
        """Throttle a share of calls, beyond botocore's retries (at most `times` calls)."""
        return self._add("throttle", rate, service, operations, times)

    def server_error(
        self,
        service: str | None = None,
        rate: float = 0.05,
        operations: set[str] | None = None,
        times: int | None = None,
    ) -> Faults:
        """Answer a share of calls with a 500 (InternalError)."""
        return self._add("server_error", rate, service, operations, times)

    def transaction_conflict(self, rate: float = 0.1, times: int | None = None) -> Faults:
        """Cancel a share of DynamoDB transactions for a conflict with another one."""
        return self._add("conflict", rate, "dynamodb", {"TransactWriteItems"}, times)

    def timeout(
        self,
        service: str | None = None,
        rate: float = 0.05,
        operations: set[str] | None = None,
        times: int | None = None,
    ) -> Faults:
        """Let a share of calls time out reading the answer (the call may have happened)."""
        return self._add("timeout", rate, service, operations, times)

    def crash(self, at: int, when: When = "before") -> Faults:
        """Kill the process (raise `SimulatedCrash`) before or after the `at`-th call."""
        self._crashes[at] = when
        return self

    def _add(
        self,
        kind: FaultKind,
        rate: float,
        service: str | None,
        operations: set[str] | None,
        times: int | None,
    ) -> Faults:
        if not 0 <= rate <= 1:
            raise ValueError("rate must be between 0 and 1")
        frozen = frozenset(operations) if operations is not None else None
        if times is not None:
            self._left[len(self._rules)] = times
        self._rules.append(FaultRule(kind, rate, service, frozen, times))
        return self

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made inside inject nothing and are not counted (a test's own reads)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    # -- deciding, call by call -------------------------------------------------------------

    def around(
        self,
        service: str,
        operation: str,
        call: Callable[[], Any],
        error: Callable[[FaultKind, str, str], BaseException],
    ) -> Any:
        """Make `call` (an AWS call of `service`) with whatever this plan injects into it;
        `error` builds the exception for an injected fault."""
        with self._lock:
            if self._paused:
                return call()
            self.calls += 1
            number = self.calls
            crash = self._crashes.pop(number, None)
            kind = None
            if crash is None:
                for index, rule in enumerate(self._rules):
                    if self._left.get(index, 1) <= 0 or not rule.applies(service, operation):
                        continue
                    if self._random.random() < rule.rate:
                        kind = rule.kind
                        if index in self._left:
                            self._left[index] -= 1
                        break
            injected = f"crash {crash}" if crash else kind
            self.log.append(Call(number, service, operation, injected))
            if injected is not None:
                self.injected[f"{service}:{kind or 'crash'}"] += 1
        if crash == "before":
            raise SimulatedCrash(f"crashed before call #{number} ({service} {operation})")
        if kind is not None and kind != "timeout":
            raise error(kind, service, operation)
        result = call()  # a timed-out call may still have happened: it is made
        if crash == "after":
            raise SimulatedCrash(f"crashed after call #{number} ({service} {operation})")
        if kind == "timeout":
            raise error(kind, service, operation)
        return result


# -- moto: botocore, above its own retries ---------------------------------------------------


def botocore_error(kind: FaultKind, service: str, operation: str) -> BaseException:
    """The exception botocore raises for such a fault, once its own retries are spent."""
    from botocore.exceptions import ClientError, ReadTimeoutError

    if kind == "timeout":
        return ReadTimeoutError(endpoint_url=f"https://{service}.injected")
    if kind == "conflict":
        cancelled: Any = {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": "Transaction cancelled [TransactionConflict] (injected)",
            },
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return ClientError(cancelled, operation)
    code, status = (
        (_THROTTLE_CODES.get(service, "ThrottlingException"), 400)
        if kind == "throttle"
        else ("InternalError", 500)
    )
    response: Any = {
        "Error": {"Code": code, "Message": f"{kind} (injected)"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


@contextmanager
def injected_into_botocore(faults: Faults) -> Iterator[None]:
    """Route every botocore call of this process through `faults` while inside."""
    from botocore.client import BaseClient

    original: Any = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private in the stubs

    def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        service = client.meta.service_model.service_name
        return faults.around(
            service,
            operation_name,
            lambda: original(client, operation_name, api_params),
            botocore_error,
        )

    setattr(BaseClient, "_make_api_call", make_api_call)  # noqa: B010
    try:
        yield
    finally:
        setattr(BaseClient, "_make_api_call", original)  # noqa: B010


# -- memory: the adapters' methods -----------------------------------------------------------


def adapter_error(kind: FaultKind, service: str, operation: str) -> BaseException:
    """What an AWS adapter raises for such a fault."""
    return InfrastructureError(f"{service} {operation}: {kind} (injected)")


class FaultyAdapter:
    """Wraps an adapter: each call of one of `operations` goes through `faults`."""

    def __init__(self, target: Any, service: str, faults: Faults, operations: set[str]) -> None:
        self._target = target
        self._service = service
        self._faults = faults
        self._operations = operations

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._operations or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._faults.around(
                self._service, name, lambda: attribute(*args, **kwargs), adapter_error
            )

        return call
