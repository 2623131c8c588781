"""``llm-mux memory`` end to end: the real executable reading real database files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from llm_mux.memory import MemoryStore, memory_db_path

FACTS = {
    "facts": [
        {"project": "api", "fact": "Uses PostgreSQL", "source": "config.yml", "confidence": 0.9},
        {"project": "api", "fact": "JWT tokens", "source": "auth.rs"},
        {"project": "web", "fact": "React 18", "source": "package.json"},
    ],
    "relationships": [{"from": "web", "to": "api", "type": "calls_api"}],
}


def seed(ecosystem: str | None) -> MemoryStore:
    store = MemoryStore(memory_db_path(ecosystem))
    store.store_text(json.dumps(FACTS), ecosystem=ecosystem)
    return store


def test_facts_for_one_project_as_json(cli) -> None:
    store = seed(None)
    result = cli("memory", "facts", "--project", "api", "--output", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ecosystem"] == "default"
    assert document["database"] == str(store.path)
    assert sorted(f["fact"] for f in document["facts"]) == ["JWT tokens", "Uses PostgreSQL"]
    assert {f["project"] for f in document["facts"]} == {"api"}
    before = cli("--output", "json", "memory", "facts", "--project", "api")
    assert json.loads(before.stdout) == document


def test_default_kind_is_facts_and_console_is_a_table(cli) -> None:
    seed(None)
    result = cli("memory")
    assert result.exit_code == 0, result.stderr
    assert "Uses PostgreSQL" in result.stdout and "React 18" in result.stdout
    quiet = cli("memory", "relationships", "-q")
    assert quiet.stdout.splitlines() == [quiet.stdout.splitlines()[0]]
    assert quiet.stdout.startswith("web\tapi\tcalls_api\t")


def test_search_and_limit(cli) -> None:
    seed(None)
    found = json.loads(cli("memory", "--search", "postgres", "-o", "json").stdout)["facts"]
    assert [f["fact"] for f in found] == ["Uses PostgreSQL"]
    limited = json.loads(cli("memory", "--limit", "2", "-o", "json").stdout)["facts"]
    assert len(limited) == 2
    assert cli("memory", "--limit", "0").exit_code == 2


def test_runs_are_listed(cli) -> None:
    store = seed(None)
    store.record_run(
        workflow="review",
        success=False,
        duration_ms=42,
        started_at=datetime.now(UTC),
        error="step 'x' failed",
    )
    runs = json.loads(cli("memory", "runs", "-o", "json").stdout)["runs"]
    assert [(r["workflow"], r["success"], r["error"]) for r in runs] == [
        ("review", False, "step 'x' failed")
    ]


def test_the_current_ecosystem_is_detected_from_the_directory(cli, isolated_home: Path) -> None:
    project = Path.cwd() / "api"
    project.mkdir()
    config = isolated_home / ".config" / "llm-mux" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[ecosystems.myapp.projects.api]\npath = "{project}"\n', encoding="utf-8")
    seed("myapp")
    inside = json.loads(cli("memory", "-o", "json", cwd=project).stdout)
    assert inside["ecosystem"] == "myapp" and len(inside["facts"]) == 3
    outside = json.loads(cli("memory", "-o", "json").stdout)
    assert outside["ecosystem"] == "default" and outside["facts"] == []
    forced = json.loads(cli("memory", "--ecosystem", "myapp", "-o", "json").stdout)
    assert len(forced["facts"]) == 3


def test_unknown_ecosystem_and_kind_are_usage_errors(cli) -> None:
    result = cli("memory", "--ecosystem", "nope")
    assert result.exit_code == 2
    assert "unknown ecosystem 'nope'" in result.stderr and result.stdout == ""
    assert cli("memory", "fcts").exit_code == 2


def test_reading_creates_no_database(cli) -> None:
    result = cli("memory")
    assert result.exit_code == 0
    assert "No facts stored" in result.stdout
    assert not memory_db_path(None).exists()


def test_a_corrupt_database_is_named_and_untouched(cli) -> None:
    path = memory_db_path(None)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not sqlite at all\n" * 100)
    result = cli("memory", "-o", "json")
    assert result.exit_code == 1
    assert str(path) in result.stderr and "not an SQLite database" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert path.read_bytes() == b"not sqlite at all\n" * 100
