"""Secret values and their redaction.

Every value that comes from a ``${VAR}`` in a sensitive place (``api_key``, URLs, headers,
CLI ``args``/``env``) is registered here when it is expanded. Everything that leaves the
process for a user (output, logs, errors, run records, saved files, the memory DB) passes
through :func:`redact`, so a registered value can never be shown.

A value rarely leaks only as itself: a server echoing a header answers it JSON-escaped, a
shell step may print it URL-encoded or base64-encoded, and JSON inside JSON escapes it twice.
So :func:`redact` masks each secret in every spelling that decodes back to it (see
:mod:`llm_mux.secret_forms`). Structured output is masked value by value with
:func:`redact_data` before it is serialised, and the serialised text is masked again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_mux.secret_forms import Masker

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
    """Replace every registered secret in ``text``, in any of its spellings, with ``***``."""
    if not _registered or not text:
        return text
    return _masker().mask(text, MASK)


def redact_data(value: Any) -> Any:
    """``value`` with every string in it (keys too) redacted, for masking before serialising."""
    if not _registered:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


_cache: list[tuple[frozenset[str], Masker]] = []


def _masker() -> Masker:
    """The masker of the registered values, rebuilt only when they change."""
    with _lock:
        values = frozenset(_registered)
        if _cache and _cache[0][0] == values:
            return _cache[0][1]
    from llm_mux.secret_forms import Masker  # only once a secret exists: start-up stays light

    masker = Masker(values)
    with _lock:
        _cache[:] = [(values, masker)]
    return masker


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
