"""`apply()` every patch once, early, in the process that serves moto; `revert()` them (tests).

`apply()` refuses (and patches nothing) when the moto installed is not the version the
patches were checked against: a new moto must be re-read first.
"""

from __future__ import annotations

from durable.local.moto_patches import (
    answers,
    expressions,
    indexes,
    logs,
    queries,
    server,
    sqs,
    transactions,
)
from durable.local.moto_patches.originals import any_patched, install_lock, put_back_originals

CHECKED_MOTO_VERSION = "5.2.5"


class MotoVersionError(RuntimeError):
    """The installed moto is not the version these patches were checked against."""


def apply() -> None:
    """Install every patch (idempotent). Call it in the process that serves moto."""
    import moto

    if moto.__version__ != CHECKED_MOTO_VERSION:
        raise MotoVersionError(
            f"durable.local.moto_patches was checked against moto {CHECKED_MOTO_VERSION}, "
            f"not {moto.__version__}: re-read moto's DynamoDB backend and update the patches"
        )
    with install_lock:
        if any_patched():
            return
        transactions.install()
        queries.install()
        server.install()
        sqs.install()
        expressions.install()
        answers.install()
        logs.install()
        indexes.install()


def revert() -> None:
    """Undo `apply()` (for tests that want moto as it ships)."""
    expressions.forget()
    server.forget()
    with install_lock:
        put_back_originals()


def applied() -> bool:
    return any_patched()
