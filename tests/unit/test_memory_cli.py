"""Rendering of ``llm-mux memory`` in each output mode, called as plain functions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llm_mux.cli.memory_cmd import cell, quiet_lines, show_memory
from llm_mux.memory import MemoryStore

DOCUMENT = {
    "facts": [
        {"project": "api", "fact": "Uses [bold]PostgreSQL[/bold]", "source": "cfg"},
        {"project": "web", "fact": "Evil \x1b[31mred\x1b[0m text", "source": "x"},
    ],
    "relationships": [{"from": "web", "to": "api", "type": "calls_api", "evidence": "e"}],
    "entities": [{"entity_type": "table", "entity_name": "users", "properties": {"n": 1}}],
}


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    store = MemoryStore(tmp_path / "m.db")
    store.store_text(json.dumps(DOCUMENT), ecosystem="myapp")
    return store


def test_json_is_one_document_filtered_by_project(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    show_memory("facts", project="api", ecosystem="myapp", output="json", store=store)
    document = json.loads(capsys.readouterr().out)
    assert document["ecosystem"] == "myapp" and document["database"] == str(store.path)
    assert [f["fact"] for f in document["facts"]] == ["Uses [bold]PostgreSQL[/bold]"]


@pytest.mark.parametrize("kind", ["facts", "relationships", "entities", "runs"])
def test_every_kind_renders_in_every_mode(
    store: MemoryStore, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    store.record_run(
        workflow="review",
        success=True,
        duration_ms=5,
        started_at=datetime.now(UTC),
        ecosystem="myapp",
    )
    for output in ("console", "quiet", "json"):
        show_memory(kind, ecosystem="myapp", output=output, store=store)
        assert capsys.readouterr().out.strip()
    show_memory(kind, ecosystem="myapp", output="json", store=store)
    assert len(json.loads(capsys.readouterr().out)[kind]) >= 1


def test_console_shows_values_literally(
    store: MemoryStore, capsys: pytest.CaptureFixture[str]
) -> None:
    show_memory("facts", ecosystem="myapp", output="console", store=store)
    out = capsys.readouterr().out
    assert "[bold]PostgreSQL[/bold]" in out
    assert "\x1b" not in out and "\\x1b[31mred" in out


def test_empty_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    show_memory("entities", ecosystem="none-yet", store=MemoryStore(tmp_path / "x.db"))
    assert "No entities stored for ecosystem 'none-yet'" in capsys.readouterr().out
    assert not (tmp_path / "x.db").exists()


def test_quiet_lines_are_tab_separated_single_lines() -> None:
    rows = [
        {
            "project": "p",
            "fact": "two\nlines\tand tab",
            "source": "s",
            "category": "",
            "confidence": 0.5,
            "updated_at": "t",
        }
    ]
    assert quiet_lines("facts", rows) == ["p\ttwo lines and tab\ts\t\t0.5\tt"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "yes"),
        (0.25, "0.25"),
        ({"b": 1, "a": [2]}, '{"a": [2], "b": 1}'),
        ("bell\x07", "bell\\x07"),
        ("c1\x9b", "c1\\x9b"),
    ],
)
def test_cells(value: object, text: str) -> None:
    assert cell(value) == text
