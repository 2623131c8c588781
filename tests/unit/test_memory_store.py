"""The memory store on both databases: round trips, upserts, history, safety of the data.

Every test taking ``store`` runs twice: on a real SQLite file and on a fresh database of a
real PostgreSQL server (``tests/fakes/postgres.py``). ``sqlite_store`` tests are about the file.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llm_mux.errors import StoreError
from llm_mux.memory import (
    FactItem,
    MemoryStore,
    StorePayload,
    memory_db_path,
    parse_store_input,
)
from llm_mux.memory.migrations import MIGRATIONS
from llm_mux.secrets import register

DOCUMENT = {
    "facts": [
        {"project": "api", "fact": "Uses PostgreSQL", "source": "config.yml", "category": "db"},
        {"project": "api", "fact": "JWT auth", "source": "auth.rs", "confidence": 0.7},
        {"project": "web", "fact": "React 18", "source": "package.json", "category": "ui"},
    ],
    "relationships": [
        {"from": "web", "to": "api", "type": "calls_api", "evidence": "fetch('/api')"},
        {"from": "api", "to": "db", "type": "depends_on"},
    ],
    "entities": [
        {
            "entity_type": "table",
            "entity_name": "users",
            "project": "db",
            "properties": {"columns": 5},
        },
    ],
}


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryStore:
    if request.param == "sqlite":
        return MemoryStore(tmp_path / "mem" / "test.db")
    return MemoryStore(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "mem" / "test.db")


def count(target: MemoryStore | Path, table: str) -> int:
    store = target if isinstance(target, MemoryStore) else MemoryStore(target)
    with store.session("read") as db:
        return int(db.rows(f"SELECT count(*) AS n FROM {table}")[0]["n"])


def dump(store: MemoryStore) -> str:
    """Every row of every table as text: what a reader of the database could see."""
    tables = ("facts", "relationships", "entities", "entity_history", "workflow_runs")
    with store.session("read") as db:
        return repr([db.rows(f"SELECT * FROM {t}") for t in (*tables, "run_steps")])


def fill(store: MemoryStore, document: object = DOCUMENT, ecosystem: str | None = "eco") -> None:
    store.store(parse_store_input(json.dumps(document)), ecosystem=ecosystem)


def test_each_kind_round_trips(store: MemoryStore) -> None:
    counts = store.store_text(json.dumps(DOCUMENT), ecosystem="eco")
    assert (counts.facts, counts.relationships, counts.entities) == (3, 2, 1)
    assert str(counts) == "3 facts, 2 relationships, 1 entity"
    facts = store.facts(project="api")
    assert {f["fact"] for f in facts} == {"Uses PostgreSQL", "JWT auth"}
    jwt = next(f for f in facts if f["fact"] == "JWT auth")
    assert jwt["confidence"] == 0.7 and jwt["ecosystem"] == "eco" and jwt["category"] == ""
    assert jwt["created_at"].endswith("Z")
    datetime.fromisoformat(jwt["created_at"].replace("Z", "+00:00"))
    assert [f["fact"] for f in store.facts(category="ui")] == ["React 18"]
    assert [r["to_project"] for r in store.relationships(project="web")] == ["api"]
    assert len(store.relationships(project="api")) == 2  # either end
    assert [r["type"] for r in store.relationships(type="depends_on")] == ["depends_on"]
    (entity,) = store.entities(entity_type="table")
    assert entity["properties"] == {"columns": 5} and entity["project"] == "db"


def test_search_is_case_insensitive_and_limit_applies_after_it(store: MemoryStore) -> None:
    fill(store)
    assert [f["fact"] for f in store.facts(search="postgresql")] == ["Uses PostgreSQL"]
    assert [f["fact"] for f in store.facts(search="PACKAGE.JSON")] == ["React 18"]
    assert len(store.facts(search="u", limit=1)) == 1
    assert len(store.facts(limit=2)) == 2
    assert store.facts(limit=0) == []
    assert [r["from_project"] for r in store.relationships(search="FETCH")] == ["web"]
    assert store.entities(search="users")[0]["entity_name"] == "users"
    with pytest.raises(StoreError, match="limit"):
        store.facts(limit=-1)


def test_ecosystems_are_kept_apart_and_default_is_never_empty(store: MemoryStore) -> None:
    fill(store, ecosystem="eco")
    fill(store, {"facts": [DOCUMENT["facts"][0]]}, ecosystem=None)
    assert len(store.facts(ecosystem="eco")) == 3
    assert [f["ecosystem"] for f in store.facts(ecosystem="default")] == ["default"]
    assert len(store.facts()) == 4
    with store.session("read") as db:
        assert db.rows("SELECT count(*) AS n FROM facts WHERE ecosystem = ''") == [{"n": 0}]


def test_same_fact_twice_is_one_row_with_new_updated_at(store: MemoryStore) -> None:
    fact = {"facts": [{**DOCUMENT["facts"][0], "confidence": 0.5}]}
    fill(store, fact)
    (first,) = store.facts()
    time.sleep(0.01)
    fill(store, {"facts": [{**fact["facts"][0], "confidence": 0.9, "category": "infra"}]})
    (second,) = store.facts()
    assert count(store, "facts") == 1
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] > first["updated_at"]
    assert (second["confidence"], second["category"]) == (0.9, "infra")


def test_same_fact_from_another_source_is_another_row(store: MemoryStore) -> None:
    fill(store, {"facts": [DOCUMENT["facts"][0], {**DOCUMENT["facts"][0], "source": "other"}]})
    assert count(store, "facts") == 2


def test_repeated_relationship_upserts(store: MemoryStore) -> None:
    fill(store)
    rel = {**DOCUMENT["relationships"][0], "evidence": "newer evidence"}
    fill(store, {"relationships": [rel, rel]})
    assert count(store, "relationships") == 2
    assert store.relationships(project="web")[0]["evidence"] == "newer evidence"


def test_entity_property_change_moves_old_value_to_history(store: MemoryStore) -> None:
    entity = {"entity_type": "service", "entity_name": "auth", "properties": {"a": 1, "b": 2}}
    fill(store, {"entities": [entity]})
    fill(store, {"entities": [{**entity, "properties": {"b": 2, "a": 1}}]})  # same value
    assert store.entity_history() == []
    fill(store, {"entities": [{**entity, "properties": {"a": 1, "b": 3}}]})
    (current,) = store.entities()
    assert current["properties"] == {"a": 1, "b": 3}
    (old,) = store.entity_history(entity_name="auth")
    assert old["properties"] == {"a": 1, "b": 2}
    assert old["replaced_at"] == current["updated_at"]
    assert count(store, "entities") == 1


def test_invalid_input_stores_nothing_and_leaves_the_file_as_it_was(store: MemoryStore) -> None:
    fill(store)
    before = dump(store)
    bad = {"facts": [{"project": "new", "fact": "valid", "source": "s"}, {"project": "x"}]}
    with pytest.raises(StoreError, match=r"facts\[1\]: missing field 'fact'"):
        store.store_text(json.dumps(bad), ecosystem="eco")
    assert dump(store) == before
    assert count(store, "facts") == 3


def test_invalid_input_leaves_the_file_byte_for_byte(sqlite_store: MemoryStore) -> None:
    fill(sqlite_store)
    assert sqlite_store.path is not None
    before = sqlite_store.path.read_bytes()
    with pytest.raises(StoreError):
        sqlite_store.store_text('{"facts": [{"project": "x"}]}', ecosystem="eco")
    assert sqlite_store.path.read_bytes() == before


def test_invalid_input_does_not_create_a_database(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "never.db")
    with pytest.raises(StoreError):
        store.store_text('{"facts": [{}]}', ecosystem=None)
    assert not store.path.exists()


def test_failure_midway_rolls_the_whole_step_back(store: MemoryStore) -> None:
    fill(store)
    good = FactItem("new", "valid fact", "s")
    unencodable = FactItem("new", "lone \ud800 surrogate", "s")
    with pytest.raises(StoreError, match="nothing was written"):
        store.store(StorePayload(facts=(good, unencodable)), ecosystem="eco")
    assert count(store, "facts") == 3
    assert store.facts(project="new") == []


def test_a_file_that_is_not_a_database_is_named_and_left_untouched(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "notes.db"
    content = b"These are my notes, not a database.\n" * 200
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        MemoryStore(path).store_text(json.dumps(DOCUMENT), ecosystem=None)
    assert str(path) in info.value.format()
    assert "not an SQLite database" in info.value.format()
    assert path.read_bytes() == content
    assert sorted(p.name for p in path.parent.iterdir()) == ["notes.db"]
    with pytest.raises(StoreError):
        MemoryStore(path).facts()
    assert path.read_bytes() == content


def test_files_are_private(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "a" / "b" / "m.db")
    holder = None
    try:
        fill(store)
        holder = sqlite3.connect(store.path)  # keeps the WAL file alive
        holder.execute("SELECT count(*) FROM facts").fetchone()
        fill(store, {"facts": [{"project": "p", "fact": "f", "source": "s"}]})
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        wal = store.path.with_name("m.db-wal")
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
        for directory in (tmp_path / "a", tmp_path / "a" / "b"):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        if holder is not None:
            holder.close()


def test_named_migrations_recorded_once(store: MemoryStore) -> None:
    fill(store)
    fill(store)
    with store.session("read") as db:
        names = [r["name"] for r in db.rows("SELECT name FROM migrations ORDER BY name")]
    assert names == sorted(m.name for m in MIGRATIONS)


def test_wal_mode(sqlite_store: MemoryStore) -> None:
    store = sqlite_store
    fill(store)
    assert store.path is not None
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_older_database_gets_only_the_missing_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, 'then')", (MIGRATIONS[0].name,))
        conn.execute(
            "INSERT INTO facts (ecosystem, project, fact, source) VALUES "
            "('default', 'p', 'kept', 's')"
        )
    fill(MemoryStore(path), {"entities": [{"entity_type": "t", "entity_name": "n"}]})
    assert count(path, "migrations") == len(MIGRATIONS)
    assert [f["fact"] for f in MemoryStore(path).facts()] == ["kept"]


def test_reading_a_missing_database_lists_nothing_and_creates_nothing(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "missing" / "m.db")
    assert store.facts() == [] and store.relationships() == [] and store.entities() == []
    assert store.runs() == []
    assert not (tmp_path / "missing").exists()


def test_locked_past_the_timeout_is_a_clear_error_and_writes_nothing(
    sqlite_store: MemoryStore,
) -> None:
    store = sqlite_store
    assert store.path is not None
    fill(store)
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        impatient = MemoryStore(store.path, busy_timeout=0.2)
        with pytest.raises(StoreError) as info:
            impatient.store_text(
                '{"facts": [{"project": "p", "fact": "f", "source": "s"}]}', ecosystem="eco"
            )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = info.value.format()
    assert str(store.path) in message and "locked" in message and "nothing was written" in message
    assert count(store, "facts") == 3


def test_secrets_never_reach_the_database(store: MemoryStore) -> None:
    secret = "sk-test-secret-value-0123456789"
    register(secret)
    fact = {"project": "api", "fact": f"key is {secret}", "source": "env"}
    fill(store, {"facts": [fact]})
    store.record_run(
        workflow="w",
        success=False,
        duration_ms=1,
        started_at=datetime.now(UTC),
        error=f"failed with {secret}",
    )
    if store.path is not None:
        for file in store.path.parent.iterdir():
            assert secret.encode() not in file.read_bytes()
    assert secret not in dump(store) and "key is ***" in dump(store)
    assert store.facts()[0]["fact"] == "key is ***"


def test_runs_are_recorded_and_updated_by_id(store: MemoryStore) -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    run_id = store.record_run(
        workflow="review",
        success=False,
        duration_ms=0,
        started_at=start,
        ecosystem="eco",
        project="api",
    )
    store.record_run(
        workflow="review",
        success=True,
        duration_ms=1234,
        started_at=start,
        ecosystem="eco",
        project="api",
        run_id=run_id,
        steps={"diff": {"status": "done", "duration_ms": 10}},
    )
    store.record_run(workflow="other", success=True, duration_ms=1, started_at=datetime.now(UTC))
    runs = store.runs(ecosystem="eco")
    assert len(runs) == 1
    run = runs[0]
    assert (run["id"], run["success"], run["duration_ms"]) == (run_id, True, 1234)
    assert run["started_at"] == "2026-01-02T03:04:05.000000Z"
    assert run["steps"] == {"diff": {"status": "done", "duration_ms": 10}}
    assert [r["workflow"] for r in store.runs(limit=1)] == ["other"]
    assert len(store.runs(search="REVIEW")) == 1


async def test_async_wrappers_run_off_the_loop(store: MemoryStore) -> None:
    counts = await store.store_text_async(json.dumps(DOCUMENT), ecosystem="eco")
    assert counts.total == 6
    payload = parse_store_input(json.dumps({"facts": [DOCUMENT["facts"][0]]}))
    assert (await store.store_async(payload, ecosystem="eco")).facts == 1
    run_id = await store.record_run_async(
        workflow="w", success=True, duration_ms=1, started_at=datetime.now(UTC)
    )
    assert store.runs()[0]["id"] == run_id


def test_db_path_follows_xdg_and_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert memory_db_path("myapp") == tmp_path / "xdg" / "llm-mux" / "memory" / "myapp.db"
    assert memory_db_path(None).name == "default.db"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert memory_db_path("") == tmp_path / "home" / ".config" / "llm-mux" / "memory" / "default.db"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert memory_db_path("a").parent == tmp_path / "home" / ".config" / "llm-mux" / "memory"


NAMES = ["../escape", "a/b", "..", ".hidden", "x\x00y", "my app", "é", "", "default"]
NAIVE = ["___escape", "a_b", "_", "hidden", "x_y", "my_app", "_", "my-app", "plain.name"]


@pytest.mark.parametrize("name", NAMES)
def test_db_names_are_sanitized(name: str) -> None:
    path = memory_db_path(name)
    assert path.parent.name == "memory"
    assert path.suffix == ".db" and not path.name.startswith(".")
    assert "/" not in path.name and "\x00" not in path.name


def test_distinct_names_get_distinct_files() -> None:
    names = [n for n in NAMES if n not in ("", "default")] + NAIVE
    paths = {memory_db_path(n) for n in names}
    assert len(paths) == len(set(names))
    assert memory_db_path("") == memory_db_path("default") == memory_db_path(None)
    assert memory_db_path("plain.name").name == "plain.name.db"


def test_run_text_that_is_not_valid_utf8_is_stored_with_replacements(store: MemoryStore) -> None:
    store.record_run(
        workflow="w",
        success=False,
        duration_ms=1,
        started_at=datetime.now(UTC),
        error="bad byte \udcff here",
        steps={"s": {"error": "also \udcfe"}},
    )
    (run,) = store.runs()
    assert run["error"] == "bad byte \ufffd here"
    assert run["steps"]["s"]["error"] == "also \udcfe"  # kept exactly, as a JSON escape
