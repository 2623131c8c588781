"""Secret values and their redaction.

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


class Secret:
    """A string whose ``repr``/``str`` never shows the value; ``reveal()`` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


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


def mask_url(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``; registers the password.

    The password is registered as written and percent-decoded, so neither form can leak.
    """
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK  # unparseable: it may hold anything
    if not password:
        return url
    register(password)
    register(unquote(password))
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{MASK}@{hostinfo}").geturl()
