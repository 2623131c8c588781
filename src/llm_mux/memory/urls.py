"""Where the memory lives: ``defaults.memory_url`` (or ``LLM_MUX_MEMORY_URL``), parsed and masked.

``postgresql://USER:PASS@HOST:PORT/DB`` (or ``postgres://``) puts every ecosystem in one
PostgreSQL database; ``sqlite:///PATH`` puts them in one SQLite file; no URL keeps one SQLite
file per ecosystem. A password is registered as a secret the moment the URL is read, so
:func:`llm_mux.secrets.redact` masks it everywhere, and :func:`mask_url` shows the URL with
``***`` in its place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from llm_mux.errors import ConfigError
from llm_mux.secrets import mask_url, register_url_passwords
from llm_mux.values import Value

ENV_VAR = "LLM_MUX_MEMORY_URL"
POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432


class MemoryTarget(Value):
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
    register_url_passwords(url)
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
