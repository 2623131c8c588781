"""Bringing a database file up to date: WAL mode and named migrations, safe to race.

:func:`prepare` runs on the first connection a process makes to a file; several processes
may run it on the same fresh file at once, so every step retries while the file is locked.
Migrations are recorded by name in the `migrations` table.

Each migration runs once, in list order, inside one `BEGIN IMMEDIATE` transaction together
with the others still pending, so processes opening a fresh file at the same moment cannot
both apply it. Append new migrations; never edit or reorder one that has shipped.

The DDL keeps to what SQLite and PostgreSQL share: TEXT/INTEGER/REAL columns, JSON as TEXT,
ISO-8601 UTC times as TEXT, and key columns ``NOT NULL DEFAULT ''`` (a NULL in a unique key
would let duplicates in on both).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from llm_mux.memory.cancel import commit, gated
from llm_mux.values import Value

_T = TypeVar("_T")
# Runs one statement with ``:name`` parameters and returns the rows it produced.
Execute = Callable[[str, Mapping[str, Any]], list[Any]]


class Migration(Value):
    """One named schema step; ``statements`` run in order inside the migration transaction."""

    name: str
    statements: tuple[str, ...]


def _key(name: str) -> str:
    return f"{name} TEXT NOT NULL DEFAULT ''"


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "m001_facts",
        (
            f"""CREATE TABLE facts (
                {_key("ecosystem")}, {_key("project")}, {_key("fact")}, {_key("source")},
                {_key("source_type")}, {_key("category")},
                confidence REAL NOT NULL DEFAULT 1.0,
                {_key("created_at")}, {_key("updated_at")},
                UNIQUE (ecosystem, project, fact, source))""",
        ),
    ),
    Migration(
        "m002_relationships",
        (
            f"""CREATE TABLE relationships (
                {_key("ecosystem")}, {_key("from_project")}, {_key("to_project")},
                {_key("type")}, {_key("evidence")}, {_key("created_at")}, {_key("updated_at")},
                UNIQUE (ecosystem, from_project, to_project, type))""",
        ),
    ),
    Migration(
        "m003_entities",
        (
            f"""CREATE TABLE entities (
                {_key("ecosystem")}, {_key("project")}, {_key("entity_type")},
                {_key("entity_name")}, properties TEXT NOT NULL DEFAULT '{{}}',
                {_key("source")}, {_key("source_type")},
                confidence REAL NOT NULL DEFAULT 1.0,
                {_key("created_at")}, {_key("updated_at")},
                UNIQUE (ecosystem, project, entity_type, entity_name))""",
            f"""CREATE TABLE entity_history (
                {_key("ecosystem")}, {_key("project")}, {_key("entity_type")},
                {_key("entity_name")}, properties TEXT NOT NULL DEFAULT '{{}}',
                {_key("source")}, {_key("valid_from")}, {_key("replaced_at")})""",
            """CREATE INDEX entity_history_key
                ON entity_history (ecosystem, project, entity_type, entity_name)""",
        ),
    ),
    Migration(
        "m004_workflow_runs",
        (
            f"""CREATE TABLE workflow_runs (
                id TEXT NOT NULL PRIMARY KEY, {_key("ecosystem")}, {_key("project")},
                {_key("workflow")}, {_key("started_at")}, {_key("finished_at")},
                success INTEGER NOT NULL DEFAULT 0, duration_ms INTEGER NOT NULL DEFAULT 0,
                {_key("error")}, steps TEXT NOT NULL DEFAULT '{{}}')""",
            "CREATE INDEX workflow_runs_started ON workflow_runs (started_at)",
        ),
    ),
    Migration(
        "m005_run_ledger",
        (
            f"ALTER TABLE workflow_runs ADD COLUMN {_key('args')}",
            f"ALTER TABLE workflow_runs ADD COLUMN {_key('status')}",
            f"ALTER TABLE workflow_runs ADD COLUMN {_key('owner')}",
            f"ALTER TABLE workflow_runs ADD COLUMN {_key('lease_until')}",
            f"""CREATE TABLE run_steps (
                {_key("run_id")}, {_key("step")}, item INTEGER NOT NULL DEFAULT -1,
                {_key("input_hash")}, {_key("status")}, result_json TEXT NOT NULL DEFAULT '{{}}',
                {_key("finished_at")},
                PRIMARY KEY (run_id, step, item))""",
        ),
    ),
)

_CREATE_LEDGER = """CREATE TABLE IF NOT EXISTS migrations (
    name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT '')"""


def pending(conn: sqlite3.Connection) -> list[Migration]:
    """Migrations not yet recorded in the database (a read; takes no write lock)."""
    has_ledger = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    if not has_ledger:
        return list(MIGRATIONS)
    applied = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    return [m for m in MIGRATIONS if m.name not in applied]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in one immediate transaction; return the names applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the transaction
    here is the only one.
    """
    if not pending(conn):
        return []
    with immediate_transaction(conn):
        return apply_pending(lambda sql, params: conn.execute(sql, params).fetchall())


@contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; any exception (Ctrl-C too) rolls everything back.

    Taking the write lock up front means the busy timeout applies when the transaction
    starts, never as a failed lock upgrade halfway through. Inside a cancellable store
    (:mod:`llm_mux.memory.cancel`), a cancel before ``COMMIT`` interrupts and rolls back.
    """
    with gated(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            with commit():
                conn.execute("COMMIT")
        except BaseException:
            conn.set_progress_handler(None, 0)  # the rollback itself must not be interrupted
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def apply_pending(execute: Execute, ddl: Callable[[str], str] = str) -> list[str]:
    """Create the ledger, apply every migration it lacks, record each; return their names.

    The caller holds the write lock (``BEGIN IMMEDIATE``, or PostgreSQL's advisory lock) for
    the whole call, so processes starting together migrate once. ``ddl`` adapts a type name
    where the two databases differ.
    """
    execute(_CREATE_LEDGER, {})
    applied = {row[0] for row in execute("SELECT name FROM migrations", {})}
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    names = []
    for migration in MIGRATIONS:
        if migration.name in applied:
            continue
        for statement in migration.statements:
            execute(ddl(statement), {})
        record = {"name": migration.name, "now": now}
        execute("INSERT INTO migrations (name, applied_at) VALUES (:name, :now)", record)
        names.append(migration.name)
    return names


def prepare(conn: sqlite3.Connection) -> None:
    """Check the file, switch to WAL, migrate. Each step may meet a lock on a fresh file."""
    conn.execute("PRAGMA schema_version").fetchone()  # a non-database fails here, read-only
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
    migrate(conn)


def retry_while_locked(action: Callable[[], _T], deadline_s: float) -> _T:
    """Retry ``action`` with jittered backoff while SQLite reports a lock, up to the deadline.

    Switching a new file to WAL and creating the schema take locks for which SQLite does not
    always call the busy handler, so processes opening a fresh file together would otherwise
    see "database is locked" at once. As for backend calls, the first attempt runs bare and
    tenacity drives the retries.
    """
    try:
        return action()
    except sqlite3.OperationalError as exc:
        if not is_locked(exc):
            raise
    from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_random_exponential

    retrying = Retrying(
        retry=retry_if_exception(_locked),
        stop=stop_before_delay(deadline_s),
        wait=wait_random_exponential(multiplier=0.005, max=0.25),
        reraise=True,
    )
    return retrying(action)


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and is_locked(exc)


def is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text
