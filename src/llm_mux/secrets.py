"""Secret values: registered when expanded, masked wherever text leaves the process.

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

import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_mux.secret_forms import Masker

MASK = "***"
_MIN_LENGTH = 4

_lock = threading.Lock()
_registered: set[str] = set()
_PASSWORD_PARAM = re.compile(r"(?i)(password=)([^&\s]*)")


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
    """``url`` with any password (in the user info or a ``password=`` parameter) shown as
    ``***``; every such password is registered as written, decoded and re-encoded, so no
    spelling of it can leak elsewhere either."""
    try:
        register_url_passwords(url)
    except ValueError:
        return MASK  # unparseable: it may hold anything
    masked = _PASSWORD_PARAM.sub(lambda m: m.group(1) + (MASK if m.group(2) else ""), url)
    if "://" not in masked:
        return redact(masked)
    scheme, rest = masked.split("://", 1)
    netloc, sep, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    return redact(f"{scheme}://{userinfo}{at}{hostport}{sep}{tail}")


def register_url_passwords(url: str) -> None:
    """Register every password ``url`` holds, in each spelling a client may send."""
    from urllib.parse import quote, unquote, urlsplit

    found = [m.group(2) for m in _PASSWORD_PARAM.finditer(url) if m.group(2)]
    userinfo = urlsplit(url).netloc.rpartition("@")[0] if "://" in url else ""
    if ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    for password in found:
        for form in {password, unquote(password), quote(unquote(password), safe="")}:
            register(form)
