"""Where the memory lives: ``defaults.memory_url`` (or ``LLM_MUX_MEMORY_URL``), parsed and masked.

``postgresql://USER:PASS@HOST:PORT/DB`` (or ``postgres://``) puts every ecosystem in one
PostgreSQL database; ``sqlite:///PATH`` puts them in one SQLite file; no URL keeps one SQLite
file per ecosystem. A password is registered as a secret the moment the URL is read, so
:func:`llm_mux.secrets.redact` masks it everywhere, and :func:`mask_url` shows the URL with
``***`` in its place.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from llm_mux import secrets
from llm_mux.errors import ConfigError

ENV_VAR = "LLM_MUX_MEMORY_URL"
POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
_PASSWORD_PARAM = re.compile(r"(?i)(password=)([^&\s]*)")


@dataclass(frozen=True)
class MemoryTarget:
    """A parsed memory URL: which store, how to reach it, and how to name it safely."""

    kind: Literal["sqlite", "postgres"]
    url: str  # as given (password included): only for connecting
    label: str  # ``HOST:PORT/DB`` or the file path: safe to show
    path: Path | None = None


def configured_url(config_value: str | None) -> str | None:
    """The memory URL in force: ``LLM_MUX_MEMORY_URL`` wins over ``defaults.memory_url``."""
    from llm_mux.config.expand import expand

    value = os.environ.get(ENV_VAR) or config_value
    if not value:
        return None
    return expand(value, owner="[defaults]", field="memory_url", secret=True)


def parse_memory_url(url: str) -> MemoryTarget:
    """Parse ``url`` (registering its password); an unknown scheme is a config error."""
    register_password(url)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return _sqlite_target(url)
    if scheme in POSTGRES_SCHEMES:
        return MemoryTarget("postgres", url, postgres_label(url))
    raise ConfigError(
        f"memory_url {mask_url(url)!r} is not a database URL",
        hint="use postgresql://USER:PASS@HOST:PORT/DB or sqlite:///PATH",
    )


def _sqlite_target(url: str) -> MemoryTarget:
    raw = url.split(":", 1)[1]
    if not raw.startswith("///"):
        raise ConfigError(
            f"memory_url {mask_url(url)!r}: an SQLite URL is sqlite:///PATH "
            "(sqlite:////abs/path for an absolute path)"
        )
    path = Path(unquote(raw[3:])).expanduser()
    if not str(path) or str(path) == ".":
        raise ConfigError(f"memory_url {url!r} names no file")
    return MemoryTarget("sqlite", url, str(path), path)


def postgres_label(url: str) -> str:
    """``HOST:PORT/DB`` of a PostgreSQL URL (libpq's defaults where parts are missing)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    try:
        port = parts.port or int(query.get("port", DEFAULT_PORT))
    except ValueError:
        port = DEFAULT_PORT
    host = parts.hostname or query.get("host") or "localhost"
    database = unquote(parts.path.lstrip("/")) or query.get("dbname") or parts.username or ""
    return f"{host}:{port}/{database}"


def register_password(url: str) -> None:
    """Register the password of ``url`` (as written, decoded and re-encoded) as a secret."""
    for password in _passwords(url):
        for form in {password, unquote(password), quote(unquote(password), safe="")}:
            secrets.register(form)


def _passwords(url: str) -> list[str]:
    found = [m.group(2) for m in _PASSWORD_PARAM.finditer(url) if m.group(2)]
    netloc = urlsplit(url).netloc if "://" in url else ""
    userinfo = netloc.rpartition("@")[0]
    if ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    return found


def mask_url(url: str) -> str:
    """``url`` with any password shown as ``***`` (in the user info and in ``password=``)."""
    masked = _PASSWORD_PARAM.sub(lambda m: m.group(1) + (secrets.MASK if m.group(2) else ""), url)
    if "://" not in masked:
        return secrets.redact(masked)
    scheme, rest = masked.split("://", 1)
    netloc, sep, tail = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + secrets.MASK
    return secrets.redact(f"{scheme}://{userinfo}{at}{hostport}{sep}{tail}")
