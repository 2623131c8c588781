"""The memory store: facts, relationships, entities and run records.

By default one SQLite file per ecosystem under ``$XDG_CONFIG_HOME/llm-mux/memory/``; a
``memory_url`` puts every ecosystem in one PostgreSQL database (or one SQLite file). Every
operation opens a session, does its work and closes it, so the store is safe to share between
threads and processes; a write is one transaction holding the write lock (``BEGIN IMMEDIATE``
or an advisory lock; one per store step), so concurrent runs serialize instead of losing rows.

The methods block. From async code call the ``*_async`` twins, which run them in a worker
thread (``asyncio.to_thread``) so the event loop keeps going while the database waits.

The SQL is written once, with ``:name`` parameters, in the subset SQLite and PostgreSQL share
(``INSERT … ON CONFLICT … DO UPDATE SET x = excluded.x``, JSON as TEXT, ISO-8601 UTC text
times); :mod:`llm_mux.memory.database` is the seam. Text filters (``search``) run in Python,
case-insensitively, since the two databases disagree on case folding.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from llm_mux.errors import StoreError
from llm_mux.memory.database import (
    BUSY_TIMEOUT_S,
    Database,
    Row,
    Session,
    SqliteDatabase,
    utf8_safe,
)
from llm_mux.memory.database import (
    READ as _READ,
)
from llm_mux.memory.database import (
    WRITE as _WRITE,
)
from llm_mux.secrets import redact, redact_data
from llm_mux.values import Value

if TYPE_CHECKING:
    from llm_mux.memory.ingest import EntityItem, FactItem, RelationshipItem, StorePayload

DEFAULT_ECOSYSTEM = "default"
_T = TypeVar("_T")


def open_database(url: str) -> Database:
    """The database a ``memory_url`` names (PostgreSQL is imported only here)."""
    from llm_mux.logs import get_logger
    from llm_mux.memory.urls import parse_memory_url
    from llm_mux.secrets import mask_url

    target = parse_memory_url(url)
    get_logger("memory").debug("memory database: %s", mask_url(url))
    if target.path is not None:
        return SqliteDatabase(target.path)
    from llm_mux.memory.postgres import PostgresDatabase

    return PostgresDatabase(target.url, target.label)


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


class StoreCounts(Value):
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
VALUES (:ecosystem, :project, :fact, :source, :source_type, :category, :confidence,
        :now, :now)
ON CONFLICT (ecosystem, project, fact, source) DO UPDATE SET
    source_type = excluded.source_type, category = excluded.category,
    confidence = excluded.confidence, updated_at = excluded.updated_at"""

_RELATIONSHIP_UPSERT = """
INSERT INTO relationships (ecosystem, from_project, to_project, type, evidence,
                           created_at, updated_at)
VALUES (:ecosystem, :from_project, :to_project, :type, :evidence, :now, :now)
ON CONFLICT (ecosystem, from_project, to_project, type) DO UPDATE SET
    evidence = excluded.evidence, updated_at = excluded.updated_at"""

_ENTITY_ARCHIVE = """
INSERT INTO entity_history (ecosystem, project, entity_type, entity_name, properties, source,
                            valid_from, replaced_at)
SELECT ecosystem, project, entity_type, entity_name, properties, source, updated_at, :now
FROM entities
WHERE ecosystem = :ecosystem AND project = :project AND entity_type = :entity_type
  AND entity_name = :entity_name AND properties <> :properties"""

_ENTITY_UPSERT = """
INSERT INTO entities (ecosystem, project, entity_type, entity_name, properties, source,
                      source_type, confidence, created_at, updated_at)
VALUES (:ecosystem, :project, :entity_type, :entity_name, :properties, :source, :source_type,
        :confidence, :now, :now)
ON CONFLICT (ecosystem, project, entity_type, entity_name) DO UPDATE SET
    properties = excluded.properties, source = excluded.source,
    source_type = excluded.source_type, confidence = excluded.confidence,
    updated_at = excluded.updated_at"""

_RUN_UPSERT = """
INSERT INTO workflow_runs (id, ecosystem, project, workflow, started_at, finished_at, success,
                           duration_ms, error, steps)
VALUES (:id, :ecosystem, :project, :workflow, :started_at, :finished_at, :success,
        :duration_ms, :error, :steps)
ON CONFLICT (id) DO UPDATE SET
    finished_at = excluded.finished_at, success = excluded.success,
    duration_ms = excluded.duration_ms, error = excluded.error, steps = excluded.steps"""


class _Query(Value):
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
    """The memory database: an SQLite file, or PostgreSQL through a ``memory_url``.

    See the module docstring for the guarantees; ``location`` names it in messages.
    """

    def __init__(
        self, target: Path | str | Database, *, busy_timeout: float = BUSY_TIMEOUT_S
    ) -> None:
        if isinstance(target, str) and "://" in target:
            target = open_database(target)
        if isinstance(target, Path | str):
            target = SqliteDatabase(Path(target), busy_timeout)
        self.database: Database = target

    @classmethod
    def for_ecosystem(cls, ecosystem: str | None, url: str | None = None) -> MemoryStore:
        """The store of an ecosystem: ``url`` (one database for all) or its default file."""
        return cls(url) if url else cls(memory_db_path(ecosystem))

    @classmethod
    def configured(cls, ecosystem: str | None, memory_url: str | None) -> MemoryStore:
        """The store in force: ``LLM_MUX_MEMORY_URL``, else ``defaults.memory_url``, else
        the ecosystem's own SQLite file."""
        from llm_mux.memory.urls import configured_url

        return cls.for_ecosystem(ecosystem, configured_url(memory_url))

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None on PostgreSQL."""
        return getattr(self.database, "path", None)

    @property
    def location(self) -> str:
        """The file path, or ``HOST:PORT/DB``: safe to show (never a password)."""
        return self.database.label

    def __repr__(self) -> str:
        return f"MemoryStore({self.location!r})"

    def session(self, action: str = _WRITE) -> AbstractContextManager[Session]:
        """An open, migrated session (for the run ledger, which shares the database)."""
        return self.database.session(action)

    # -- writing -------------------------------------------------------------------------

    def store(self, payload: StorePayload, *, ecosystem: str | None) -> StoreCounts:
        """Write all items of one store step in one transaction (all or nothing)."""
        if not len(payload):
            return StoreCounts()
        eco, now = ecosystem_key(ecosystem), utc_now()
        with self.session(_WRITE) as db, db.write():
            db.run_many(_FACT_UPSERT, (_fact_row(eco, f, now) for f in payload.facts))
            rels = (_relationship_row(eco, r, now) for r in payload.relationships)
            db.run_many(_RELATIONSHIP_UPSERT, rels)
            for entity in payload.entities:
                _write_entity(db, eco, entity, now)
        return StoreCounts(len(payload.facts), len(payload.relationships), len(payload.entities))

    def store_text(self, text: str, *, ecosystem: str | None) -> StoreCounts:
        """Parse a store step's rendered prompt and store it; invalid input touches nothing."""
        from llm_mux.memory.ingest import parse_store_input

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
        row = {
            "id": run_id,
            "ecosystem": ecosystem_key(ecosystem),
            "project": _safe_text(project or ""),
            "workflow": _safe_text(workflow),
            "started_at": iso_utc(started_at),
            "finished_at": iso_utc(finished_at) if finished_at else utc_now(),
            "success": int(success),
            "duration_ms": int(duration_ms),
            "error": _safe_text(error or ""),
            "steps": redact(json.dumps(redact_data(dict(steps or {})), default=str)),
        }
        with self.session(_WRITE) as db, db.write():
            db.run(_RUN_UPSERT, row)
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

    # -- listing ---------------------------------------------------------------------

    def _list(
        self,
        query: _Query,
        filters: Mapping[str, str | None],
        search: str | None,
        limit: int | None,
    ) -> list[Row]:
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise StoreError(f"limit must be a non-negative integer, got {limit!r}")
        if not self.database.exists():
            return []
        sql, params = _select(query, filters, None if search else limit)
        with self.session(_READ) as db:
            rows = db.rows(sql, params)
        return _search(rows, query.searched, search, limit) if search else rows


def _safe_text(text: str) -> str:
    """Free text from a run (errors can hold anything): storable as UTF-8, secrets masked."""
    return redact(utf8_safe(text))


def _fact_row(eco: str, fact: FactItem, now: str) -> Row:
    return {
        "ecosystem": eco,
        "project": redact(fact.project),
        "fact": redact(fact.fact),
        "source": redact(fact.source),
        "source_type": redact(fact.source_type),
        "category": redact(fact.category),
        "confidence": fact.confidence,
        "now": now,
    }


def _relationship_row(eco: str, rel: RelationshipItem, now: str) -> Row:
    return {
        "ecosystem": eco,
        "from_project": redact(rel.from_project),
        "to_project": redact(rel.to_project),
        "type": redact(rel.type),
        "evidence": redact(rel.evidence),
        "now": now,
    }


def _write_entity(db: Session, eco: str, entity: EntityItem, now: str) -> None:
    """Move a changed ``properties`` value into the history, then upsert the entity."""
    key = {
        "project": entity.project,
        "entity_type": entity.entity_type,
        "entity_name": entity.entity_name,
    }
    props = redact(json.dumps(redact_data(entity.properties), sort_keys=True, ensure_ascii=False))
    row = {"ecosystem": eco, **_masked(key), "properties": props, "now": now}
    db.run(_ENTITY_ARCHIVE, row)
    extra = {"source": entity.source, "source_type": entity.source_type}
    db.run(_ENTITY_UPSERT, {**row, **_masked(extra), "confidence": entity.confidence})


def _masked(texts: Mapping[str, str]) -> dict[str, str]:
    return {name: redact(text) for name, text in texts.items()}


def _select(
    query: _Query, filters: Mapping[str, str | None], limit: int | None
) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for column, value in filters.items():
        if value is None:
            continue
        if column == "ecosystem":
            value = ecosystem_key(value)
        params[column] = value
        if column == "project" and query is _RELATIONSHIPS:
            clauses.append("(from_project = :project OR to_project = :project)")
        else:
            clauses.append(f"{column} = :{column}")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT {query.columns} FROM {query.table}{where} ORDER BY {query.order}"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
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
