"""The memory database on PostgreSQL, through psycopg 3 (the ``llm-mux[postgres]`` extra).

Imported only when ``memory_url`` names PostgreSQL. It runs the store's SQL text unchanged
but for the parameter style (``:name`` → ``%(name)s``) and one DDL type (``REAL`` is single
precision there, so columns become ``DOUBLE PRECISION`` and a confidence of 0.7 reads back
as 0.7). Migrations and every write run under ``pg_advisory_xact_lock``, so ten processes
starting together migrate once and concurrent store steps serialize as they do on SQLite.

A server that refuses, does not answer within ``connect_timeout`` (default 10 s) or refuses
the login is one :class:`StoreError`: ``memory database unavailable at HOST:PORT/DB
(REASON)``, never the password; nothing is written and nothing falls back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from llm_mux.errors import ConfigError, StoreError
from llm_mux.memory.database import READ, WRITE, Params, Row, Session
from llm_mux.memory.migrations import apply_pending
from llm_mux.secrets import redact

if TYPE_CHECKING:
    import psycopg

DEFAULT_CONNECT_TIMEOUT_S = 10
# One key for the whole memory schema: migrations and writes of every process take it.
LOCK_KEY = 0x6C6C6D2D6D7578  # "llm-mux"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_REAL = re.compile(r"\bREAL\b")
# URLs this process has already migrated (a migration persists in the database).
_PREPARED: set[str] = set()


def to_pyformat(sql: str) -> str:
    """The store's ``:name`` parameters in psycopg's ``%(name)s`` style (``%`` escaped)."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def postgres_ddl(statement: str) -> str:
    """A migration statement for PostgreSQL: REAL (float4 there) as DOUBLE PRECISION."""
    return _REAL.sub("DOUBLE PRECISION", statement)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "memory_url names PostgreSQL, but psycopg is not installed",
            hint="pip install 'llm-mux[postgres]'",
        ) from None
    return psycopg


class PostgresSession:
    """A session over one autocommit psycopg connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        with self.conn.cursor() as cursor:
            cursor.execute(to_pyformat(sql), dict(params or {}))
            if cursor.description is None:
                return []
            names = [d.name for d in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def run(self, sql: str, params: Params | None = None) -> int:
        with self.conn.cursor() as cursor:
            cursor.execute(to_pyformat(sql), dict(params or {}))
            return cursor.rowcount

    def run_many(self, sql: str, params: Iterable[Params]) -> None:
        batch = [dict(p) for p in params]
        if batch:
            with self.conn.cursor() as cursor:
                cursor.executemany(to_pyformat(sql), batch)

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction under the advisory lock. Inside a cancellable store step a cancel
        before the commit rolls it back (the step stored nothing); after, it is refused."""
        from llm_mux.memory.cancel import begin_commit, begin_write, end_commit

        begin_write()
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            yield
            begin_commit()  # raises StoreCancelled when cancelled: the block rolls back
        end_commit()


class PostgresDatabase:
    """A PostgreSQL database holding every ecosystem's memory."""

    def __init__(self, url: str, label: str) -> None:
        self.url = url
        self.label = label

    def exists(self) -> bool:
        return True

    @contextmanager
    def session(self, action: str) -> Iterator[Session]:
        psycopg = _psycopg()
        conn = self._connect(psycopg)
        try:
            with self._errors(psycopg, action):
                session = PostgresSession(conn)
                if self.url not in _PREPARED:
                    self._migrate(session)
                    _PREPARED.add(self.url)
                yield session
        finally:
            conn.close()

    def ping(self) -> str:
        """Connect and ask ``SELECT 1`` (no migration); the server version on success."""
        psycopg = _psycopg()
        conn = self._connect(psycopg)
        try:
            with self._errors(psycopg, READ):
                conn.execute("SELECT 1")
                version = conn.info.server_version
        finally:
            conn.close()
        return f"PostgreSQL {version // 10000}.{version % 10000} answers"

    def _connect(self, driver: Any) -> psycopg.Connection[Any]:
        extra: dict[str, Any] = {}
        if "connect_timeout" not in dict(parse_qsl(urlsplit(self.url).query)):
            extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_S
        try:
            conn: psycopg.Connection[Any] = driver.connect(self.url, autocommit=True, **extra)
        except driver.Error as exc:
            raise StoreError(self.unavailable(exc)) from None
        except (ValueError, OSError) as exc:
            raise StoreError(self.unavailable(exc)) from None
        return conn

    def _migrate(self, session: PostgresSession) -> None:
        with session.write():
            apply_pending(
                lambda sql, params: [tuple(r.values()) for r in session.rows(sql, params)],
                postgres_ddl,
            )

    def unavailable(self, exc: BaseException) -> str:
        """``memory database unavailable at HOST:PORT/DB (REASON)``, password masked."""
        return f"memory database unavailable at {self.label} ({_reason(exc)})"

    @contextmanager
    def _errors(self, psycopg: Any, action: str) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as exc:
            raise StoreError(self.unavailable(exc) + _nothing(action)) from None
        except (psycopg.Error, UnicodeError, ValueError) as exc:
            text = f"cannot {action} the memory database at {self.label}: {_reason(exc)}"
            raise StoreError(text + _nothing(action)) from None


def _nothing(action: str) -> str:
    return "; nothing was written" if action == WRITE else ""


def _reason(exc: BaseException) -> str:
    """The driver's message on one line, secrets masked: libpq's own cause (``Connection
    refused``, ``timeout expired``, a login refusal) without the host it repeats."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = text.rsplit(" failed: ", 1)[-1]
    return redact(text.removeprefix("connection failed: "))


__all__ = ["READ", "WRITE", "PostgresDatabase", "postgres_ddl", "to_pyformat"]
