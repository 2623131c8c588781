"""Secret values: registered when expanded, masked wherever text leaves the process.

Every value that comes from a ``${VAR}`` in a sensitive place (``api_key``, URLs, headers,
CLI ``args``/``env``) is registered here when it is expanded. Everything that leaves the
process for a user (output, logs, errors, run records, saved files, the memory DB) passes
through :func:`redact`, so a registered value can never be shown.
"""

from __future__ import annotations

import threading

MASK = "***"
_MIN_LENGTH = 4

_lock = threading.Lock()
_registered: set[str] = set()


def register(value: str) -> None:
    """Remember a value that must never be shown (short values would mask too much)."""
    if len(value) >= _MIN_LENGTH:
        with _lock:
            _registered.add(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` with ``***``."""
    if not _registered or not text:
        return text
    with _lock:
        values = sorted(_registered, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def registered() -> frozenset[str]:
    """The values registered so far (for tests and the run-record writer)."""
    with _lock:
        return frozenset(_registered)
