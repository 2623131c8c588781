"""The seam under the memory store: one small interface, SQLite or PostgreSQL behind it.

The store writes its SQL once, with ``:name`` parameters, in the subset both databases share;
a :class:`Database` opens a :class:`Session` that runs it (PostgreSQL's adapter maps ``:name``
to ``%(name)s``). A session translates its driver's errors into :class:`StoreError` naming the
database, and :meth:`Session.write` is one transaction that takes the database's write lock
up front (``BEGIN IMMEDIATE``; an advisory lock on PostgreSQL), so concurrent writers wait
instead of interleaving, and any exception, Ctrl-C included, rolls the whole block back.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from llm_mux.errors import StoreError
from llm_mux.memory.migrations import (
    immediate_transaction,
    is_locked,
    prepare,
    retry_while_locked,
)

Row = dict[str, Any]
Params = Mapping[str, Any]
WRITE, READ = "write to", "read"
BUSY_TIMEOUT_S = 10.0
OPEN_DEADLINE_S = 30.0
# Files (device, inode) this process has already switched to WAL and migrated: both persist
# in the file, so later connections skip those round trips.
_PREPARED: set[tuple[int, int]] = set()
_SURROGATE = re.compile("[\ud800-\udfff]")


class Session(Protocol):
    """An open, migrated connection; closed when its ``with`` block ends."""

    def rows(self, sql: str, params: Params | None = None) -> list[Row]: ...

    def run(self, sql: str, params: Params | None = None) -> int: ...

    def run_many(self, sql: str, params: Iterable[Params]) -> None: ...

    def write(self) -> AbstractContextManager[None]: ...


class Database(Protocol):
    """Where the memory lives; ``label`` names it in messages (never a password)."""

    label: str

    def exists(self) -> bool: ...

    def ping(self) -> str: ...

    def session(self, action: str) -> AbstractContextManager[Session]: ...


class SqliteSession:
    """A session over one ``sqlite3`` connection in autocommit mode."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Params | None = None) -> list[Row]:
        cursor = self.conn.execute(sql, params or {})
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, values, strict=True)) for values in cursor]

    def run(self, sql: str, params: Params | None = None) -> int:
        return self.conn.execute(sql, params or {}).rowcount

    def run_many(self, sql: str, params: Iterable[Params]) -> None:
        self.conn.executemany(sql, params)

    @contextmanager
    def write(self) -> Iterator[None]:
        with immediate_transaction(self.conn):
            yield


class SqliteDatabase:
    """One SQLite file: WAL, busy timeout, created 0600 in 0700 directories."""

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self.label = str(path)

    def exists(self) -> bool:
        return self.path.exists()

    def ping(self) -> str:
        """Whether the file opens as a database (read-only; a missing one is made on use)."""
        if not self.path.exists():
            return "not created yet (made on first use)"
        with self._errors(READ):
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                conn.execute("PRAGMA schema_version").fetchone()
            finally:
                conn.close()
        return "SQLite file opens"

    @contextmanager
    def session(self, action: str) -> Iterator[Session]:
        with self._errors(action):
            identity = _ensure_file(self.path)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            with self._errors(action):
                if identity not in _PREPARED:
                    retry_while_locked(lambda: prepare(conn), OPEN_DEADLINE_S)
                    _PREPARED.add(identity)
                conn.execute("PRAGMA synchronous=NORMAL")
                yield SqliteSession(conn)
        finally:
            conn.close()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate sqlite3 and OS errors into StoreError naming the database."""
        try:
            yield
        except (sqlite3.Error, OSError, UnicodeError, ValueError) as exc:
            raise StoreError(self._describe(exc, action), file=self.path) from exc

    def _describe(self, exc: Exception, action: str) -> str:
        text = str(exc)
        if "file is not a database" in text:
            return "not an SQLite database (the file was left untouched)"
        if isinstance(exc, sqlite3.Error) and is_locked(exc):
            text = f"locked by another process (waited {self.busy_timeout:g} s)"
        nothing = "; nothing was written" if action == WRITE else ""
        return f"cannot {action} the memory database: {text}{nothing}"


def _ensure_file(path: Path) -> tuple[int, int]:
    """Create the file 0600 (and missing directories 0700) before SQLite opens it.

    Returns the file's identity (device, inode) for the cache of prepared files.
    """
    _ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        info = path.stat()
        return info.st_dev, info.st_ino
    try:
        os.fchmod(fd, 0o600)
        info = os.fstat(fd)
    finally:
        os.close(fd)
    return info.st_dev, info.st_ino


def _ensure_dir(directory: Path) -> None:
    missing: list[Path] = []
    while not directory.exists() and directory != directory.parent:
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        path.chmod(0o700)


def utf8_safe(text: str) -> str:
    """Replace what no store can hold with U+FFFD: lone surrogates (valid in JSON escapes,
    not in UTF-8) and NUL (PostgreSQL text refuses it), so both stores keep the same text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text
