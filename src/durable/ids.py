"""Identifiers made by the library (run ids, lease owners, inbox ids).

Run ids sort by creation time (a millisecond timestamp prefix) and carry 80 random bits;
a batch child's is derived from its slot instead.
This module is the library's only user of `uuid.uuid4`/`os.urandom` outside user tasks.
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import datetime


def new_run_id(now: datetime) -> str:
    """A run id: `run_` + 12 hex digits of milliseconds + 20 random hex digits."""
    millis = int(now.timestamp() * 1000)
    return f"run_{millis:012x}{os.urandom(10).hex()}"


def child_run_id(parent_run_id: str, task_attempt: int, position: int, index: int) -> str:
    """The run id of child `index` of a batch: stable, so starting it twice starts it once."""
    return f"{parent_run_id}.{task_attempt}.{position}.{index}"


def new_owner_id() -> str:
    """A lease owner id, unique per invocation."""
    return uuid.uuid4().hex


def new_inbox_id(now: datetime) -> str:
    """An inbox item id that sorts by arrival."""
    millis = int(now.timestamp() * 1000)
    return f"{millis:012x}-{secrets.token_hex(6)}"


def random_uuid() -> uuid.UUID:
    """A random UUID (for ctx.uuid4, which records it)."""
    return uuid.uuid4()


def random_fraction() -> float:
    """A uniform float in [0, 1) from the OS's randomness (for ctx.random, which records it)."""
    return int.from_bytes(os.urandom(7), "big") / 2**56


def new_callback_token() -> str:
    """A callback token: 192 random bits, URL-safe, unrelated to any run."""
    return secrets.token_urlsafe(24)
