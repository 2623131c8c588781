"""The memory store: facts, relationships, entities and run records in one SQLite file.

One file per ecosystem under ``$XDG_CONFIG_HOME/llm-mux/memory/``. Every operation opens a
connection, does its work and closes it, so the store is safe to share between threads and
processes; a write is one ``BEGIN IMMEDIATE`` transaction (one per store step), so concurrent
runs serialize on the busy timeout instead of losing rows.

The methods block. From async code call the ``*_async`` twins, which run them in a worker
thread (``asyncio.to_thread``) so the event loop keeps going while SQLite waits for a lock.

The SQL is the subset SQLite and PostgreSQL share (``INSERT … ON CONFLICT … DO UPDATE SET
x = excluded.x``, JSON as TEXT, ISO-8601 UTC text times), so another database can later sit
behind the same methods. Text filters (``search``) run in Python, case-insensitively, since the
two databases disagree on case folding.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from llm_mux.errors import StoreError
from llm_mux.memory.ingest import (
    EntityItem,
    FactItem,
    RelationshipItem,
    StorePayload,
    parse_store_input,
    utf8_safe,
)
from llm_mux.memory.migrations import (
    immediate_transaction,
    is_locked,
    prepare,
    retry_while_locked,
)
from llm_mux.secrets import redact, redact_data

DEFAULT_ECOSYSTEM = "default"
BUSY_TIMEOUT_S = 10.0
OPEN_DEADLINE_S = 30.0
_T = TypeVar("_T")
_WRITE, _READ = "write to", "read"
# Files (device, inode) this process has already switched to WAL and migrated: both persist
# in the file, so later connections skip those round trips.
_PREPARED: set[tuple[int, int]] = set()
Row = dict[str, Any]


def config_home() -> Path:
    """``$XDG_CONFIG_HOME`` when set to an absolute path (per the XDG spec), else ~/.config."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".config"


def memory_db_path(ecosystem: str | None) -> Path:
    """The database file of an ecosystem (``default.db`` outside any ecosystem)."""
    return config_home() / "llm-mux" / "memory" / f"{safe_file_stem(ecosystem_key(ecosystem))}.db"


def ecosystem_key(ecosystem: str | None) -> str:
    """The value of the ``ecosystem`` column: the name, or ``default`` (never empty/NULL)."""
    return ecosystem if ecosystem and ecosystem.strip() else DEFAULT_ECOSYSTEM


def safe_file_stem(name: str) -> str:
    """A file name for ``name``; names that needed changing get a hash so they never collide."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")[:80]
    if safe == name:
        return safe
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{safe or 'ecosystem'}-{digest}"


def utc_now() -> str:
    """ISO-8601 UTC with microseconds; sorts as text in time order."""
    return iso_utc(datetime.now(UTC))


def iso_utc(moment: datetime) -> str:
    """``moment`` in UTC as ISO-8601 text (a naive datetime counts as local time)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StoreCounts:
    """How many items of each kind one store call wrote (inserted or updated)."""

    facts: int = 0
    relationships: int = 0
    entities: int = 0

    @property
    def total(self) -> int:
        return self.facts + self.relationships + self.entities

    def __str__(self) -> str:
        parts = [(self.facts, "fact"), (self.relationships, "relationship")]
        parts.append((self.entities, "entity"))
        return ", ".join(f"{n} {_plural(n, word)}" for n, word in parts)


def _plural(count: int, word: str) -> str:
    if count == 1:
        return word
    return word[:-1] + "ies" if word.endswith("y") else word + "s"


_FACT_UPSERT = """
INSERT INTO facts (ecosystem, project, fact, source, source_type, category, confidence,
                   created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ecosystem, project, fact, source) DO UPDATE SET
    source_type = excluded.source_type, category = excluded.category,
    confidence = excluded.confidence, updated_at = excluded.updated_at"""

_RELATIONSHIP_UPSERT = """
INSERT INTO relationships (ecosystem, from_project, to_project, type, evidence,
                           created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ecosystem, from_project, to_project, type) DO UPDATE SET
    evidence = excluded.evidence, updated_at = excluded.updated_at"""

_ENTITY_ARCHIVE = """
INSERT INTO entity_history (ecosystem, project, entity_type, entity_name, properties, source,
                            valid_from, replaced_at)
SELECT ecosystem, project, entity_type, entity_name, properties, source, updated_at, ?
FROM entities
WHERE ecosystem = ? AND project = ? AND entity_type = ? AND entity_name = ?
  AND properties <> ?"""

_ENTITY_UPSERT = """
INSERT INTO entities (ecosystem, project, entity_type, entity_name, properties, source,
                      source_type, confidence, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (ecosystem, project, entity_type, entity_name) DO UPDATE SET
    properties = excluded.properties, source = excluded.source,
    source_type = excluded.source_type, confidence = excluded.confidence,
    updated_at = excluded.updated_at"""

_RUN_UPSERT = """
INSERT INTO workflow_runs (id, ecosystem, project, workflow, started_at, finished_at, success,
                           duration_ms, error, steps)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    finished_at = excluded.finished_at, success = excluded.success,
    duration_ms = excluded.duration_ms, error = excluded.error, steps = excluded.steps"""


@dataclass(frozen=True)
class _Query:
    """One listing: table, selected columns (SQL text), order, and the columns searched."""

    table: str
    columns: str
    order: str
    searched: tuple[str, ...]


_FACTS = _Query(
    "facts",
    "ecosystem, project, fact, source, source_type, category, confidence, created_at, updated_at",
    "updated_at DESC, project, fact, source",
    ("project", "fact", "source", "source_type", "category"),
)
_RELATIONSHIPS = _Query(
    "relationships",
    "ecosystem, from_project, to_project, type, evidence, created_at, updated_at",
    "updated_at DESC, from_project, to_project, type",
    ("from_project", "to_project", "type", "evidence"),
)
_ENTITIES = _Query(
    "entities",
    "ecosystem, project, entity_type, entity_name, properties, source, source_type, "
    "confidence, created_at, updated_at",
    "updated_at DESC, project, entity_type, entity_name",
    ("project", "entity_type", "entity_name", "properties"),
)
_HISTORY = _Query(
    "entity_history",
    "ecosystem, project, entity_type, entity_name, properties, source, valid_from, replaced_at",
    "replaced_at DESC, project, entity_type, entity_name",
    ("project", "entity_type", "entity_name", "properties"),
)
_RUNS = _Query(
    "workflow_runs",
    "id, ecosystem, project, workflow, started_at, finished_at, success, duration_ms, error, steps",
    "started_at DESC, id",
    ("workflow", "project", "error"),
)


class MemoryStore:
    """The SQLite memory database at ``path``; see the module docstring for the guarantees."""

    def __init__(self, path: Path | str, *, busy_timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    @classmethod
    def for_ecosystem(cls, ecosystem: str | None) -> MemoryStore:
        """The store of an ecosystem at its default location (see :func:`memory_db_path`)."""
        return cls(memory_db_path(ecosystem))

    def __repr__(self) -> str:
        return f"MemoryStore({str(self.path)!r})"

    # -- writing -------------------------------------------------------------------------

    def store(self, payload: StorePayload, *, ecosystem: str | None) -> StoreCounts:
        """Write all items of one store step in one transaction (all or nothing)."""
        if not len(payload):
            return StoreCounts()
        eco, now = ecosystem_key(ecosystem), utc_now()
        with self._connection(_WRITE) as conn, self._errors(_WRITE), immediate_transaction(conn):
            conn.executemany(_FACT_UPSERT, (_fact_row(eco, f, now) for f in payload.facts))
            rels = (_relationship_row(eco, r, now) for r in payload.relationships)
            conn.executemany(_RELATIONSHIP_UPSERT, rels)
            for entity in payload.entities:
                _write_entity(conn, eco, entity, now)
        return StoreCounts(len(payload.facts), len(payload.relationships), len(payload.entities))

    def store_text(self, text: str, *, ecosystem: str | None) -> StoreCounts:
        """Parse a store step's rendered prompt and store it; invalid input touches nothing."""
        return self.store(parse_store_input(text), ecosystem=ecosystem)

    def record_run(
        self,
        *,
        workflow: str,
        success: bool,
        duration_ms: int,
        started_at: datetime,
        finished_at: datetime | None = None,
        ecosystem: str | None = None,
        project: str | None = None,
        error: str | None = None,
        steps: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> str:
        """Record (or update, for the same ``run_id``) one workflow run; return its id.

        ``steps`` is a summary (name → status, duration, error), not the step outputs.
        """
        run_id = run_id or uuid.uuid4().hex
        finished = iso_utc(finished_at) if finished_at else utc_now()
        steps_json = redact(json.dumps(redact_data(dict(steps or {})), default=str))
        texts = (_safe_text(project or ""), _safe_text(workflow))
        times = (iso_utc(started_at), finished, int(success), int(duration_ms))
        error_text = _safe_text(error or "")
        row = (run_id, ecosystem_key(ecosystem), *texts, *times, error_text, steps_json)
        with self._connection(_WRITE) as conn, self._errors(_WRITE), immediate_transaction(conn):
            conn.execute(_RUN_UPSERT, row)
        return run_id

    # -- reading -------------------------------------------------------------------------

    def facts(
        self,
        project: str | None = None,
        category: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        *,
        ecosystem: str | None = None,
    ) -> list[Row]:
        """Facts, most recently updated first; ``None`` filters match everything."""
        filters = {"ecosystem": ecosystem, "project": project, "category": category}
        return self._list(_FACTS, filters, search, limit)

    def relationships(
        self,
        project: str | None = None,
        type: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        *,
        ecosystem: str | None = None,
    ) -> list[Row]:
        """Relationships; ``project`` matches either end."""
        filters = {"ecosystem": ecosystem, "type": type, "project": project}
        return self._list(_RELATIONSHIPS, filters, search, limit)

    def entities(
        self,
        project: str | None = None,
        entity_type: str | None = None,
        search: str | None = None,
        limit: int | None = None,
        *,
        ecosystem: str | None = None,
    ) -> list[Row]:
        """Entities with their current ``properties`` (a dict)."""
        filters = {"ecosystem": ecosystem, "project": project, "entity_type": entity_type}
        return [_decode(r, "properties") for r in self._list(_ENTITIES, filters, search, limit)]

    def entity_history(
        self,
        project: str | None = None,
        entity_type: str | None = None,
        entity_name: str | None = None,
        *,
        ecosystem: str | None = None,
    ) -> list[Row]:
        """Earlier property values of entities, most recently replaced first."""
        filters = {"ecosystem": ecosystem, "project": project, "entity_type": entity_type}
        filters["entity_name"] = entity_name
        return [_decode(r, "properties") for r in self._list(_HISTORY, filters, None, None)]

    def runs(
        self,
        limit: int | None = 20,
        *,
        project: str | None = None,
        search: str | None = None,
        ecosystem: str | None = None,
    ) -> list[Row]:
        """Recorded workflow runs, newest first; ``success`` is a bool, ``steps`` a dict."""
        filters = {"ecosystem": ecosystem, "project": project}
        rows = self._list(_RUNS, filters, search, limit)
        return [_decode(r, "steps") | {"success": bool(r["success"])} for r in rows]

    # -- async twins (worker thread) -----------------------------------------------------

    async def store_async(self, payload: StorePayload, *, ecosystem: str | None) -> StoreCounts:
        return await _in_thread(lambda: self.store(payload, ecosystem=ecosystem))

    async def store_text_async(self, text: str, *, ecosystem: str | None) -> StoreCounts:
        return await _in_thread(lambda: self.store_text(text, ecosystem=ecosystem))

    async def record_run_async(self, **fields: Any) -> str:
        return await _in_thread(lambda: self.record_run(**fields))

    # -- connections ---------------------------------------------------------------------

    def _list(
        self,
        query: _Query,
        filters: Mapping[str, str | None],
        search: str | None,
        limit: int | None,
    ) -> list[Row]:
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise StoreError(f"limit must be a non-negative integer, got {limit!r}")
        if not self.path.exists():
            return []
        sql, params = _select(query, filters, None if search else limit)
        with self._connection(_READ) as conn, self._errors(_READ):
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values, strict=True)) for values in cursor]
        return _search(rows, query.searched, search, limit) if search else rows

    @contextmanager
    def _connection(self, action: str) -> Iterator[sqlite3.Connection]:
        """An open, migrated connection in WAL mode, closed on exit whatever happens."""
        with self._errors(action):
            identity = _ensure_file(self.path)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            with self._errors(action):
                if identity not in _PREPARED:
                    retry_while_locked(lambda: prepare(conn), OPEN_DEADLINE_S)
                    _PREPARED.add(identity)
                conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
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
        nothing = "; nothing was written" if action == _WRITE else ""
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


def _safe_text(text: str) -> str:
    """Free text from a run (errors can hold anything): storable as UTF-8, secrets masked."""
    return redact(utf8_safe(text))


def _fact_row(eco: str, fact: FactItem, now: str) -> tuple[Any, ...]:
    texts = (fact.project, fact.fact, fact.source, fact.source_type, fact.category)
    return (eco, *map(redact, texts), fact.confidence, now, now)


def _relationship_row(eco: str, rel: RelationshipItem, now: str) -> tuple[Any, ...]:
    texts = (rel.from_project, rel.to_project, rel.type, rel.evidence)
    return (eco, *map(redact, texts), now, now)


def _write_entity(conn: sqlite3.Connection, eco: str, entity: EntityItem, now: str) -> None:
    """Move a changed ``properties`` value into the history, then upsert the entity."""
    key = (eco, *map(redact, (entity.project, entity.entity_type, entity.entity_name)))
    props = redact(json.dumps(redact_data(entity.properties), sort_keys=True, ensure_ascii=False))
    conn.execute(_ENTITY_ARCHIVE, (now, *key, props))
    extra = (redact(entity.source), redact(entity.source_type), entity.confidence, now, now)
    conn.execute(_ENTITY_UPSERT, (*key, props, *extra))


def _select(
    query: _Query, filters: Mapping[str, str | None], limit: int | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in filters.items():
        if value is None:
            continue
        if column == "ecosystem":
            value = ecosystem_key(value)
        if column == "project" and query is _RELATIONSHIPS:
            clauses.append("(from_project = ? OR to_project = ?)")
            params += [value, value]
            continue
        clauses.append(f"{column} = ?")
        params.append(value)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {query.columns} FROM {query.table}{where} ORDER BY {query.order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _search(rows: list[Row], columns: Sequence[str], search: str, limit: int | None) -> list[Row]:
    needle = search.casefold()
    found = [r for r in rows if any(needle in str(r[c]).casefold() for c in columns)]
    return found if limit is None else found[:limit]


def _decode(row: Row, column: str) -> Row:
    try:
        row[column] = json.loads(row[column])
    except ValueError:
        pass
    return row


async def _in_thread(call: Callable[[], _T]) -> _T:
    import asyncio

    return await asyncio.to_thread(call)
