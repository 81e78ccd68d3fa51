"""What the patches replaced: each patched attribute's original, so `revert()` can put it back.

Every patch module installs through `patch` (a method or function its owner defines) or
`patch_attribute` (a class attribute the owner may only inherit), and reaches moto's own
code through `original`, which is how a patch delegates to what it wraps.
"""

from __future__ import annotations

import threading
from typing import Any

# held while the patches are installed or reverted
install_lock = threading.Lock()

_originals: dict[tuple[Any, str], Any] = {}
_INHERITED = object()  # an attribute the patched class did not define itself


def patch(owner: Any, name: str, replacement: Any) -> None:
    _originals[(owner, name)] = owner.__dict__[name]
    setattr(owner, name, replacement)


def patch_attribute(owner: Any, name: str, value: Any) -> None:
    """Set a class attribute that may be inherited (reverted by deleting it if so)."""
    _originals[(owner, name)] = owner.__dict__.get(name, _INHERITED)
    setattr(owner, name, value)


def original(owner: Any, name: str) -> Any:
    return _originals[(owner, name)]


def any_patched() -> bool:
    return bool(_originals)


def put_back_originals() -> None:
    """Restore every patched attribute (the caller holds `install_lock`)."""
    for (owner, name), replaced in _originals.items():
        if replaced is _INHERITED:
            delattr(owner, name)
        else:
            setattr(owner, name, replaced)
    _originals.clear()
