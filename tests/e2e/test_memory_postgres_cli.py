"""The real CLI with its knowledge base on a real PostgreSQL server (``memory_url``)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from llm_mux.memory import MemoryStore
from tests.e2e.test_store_step import FACTS_WORKFLOW, write_workflow

PASSWORD = "pl4nted-Pa55word"


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{PASSWORD}@")  # the server trusts 127.0.0.1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_store_steps_and_memory_commands_use_the_database(cli, postgres_url: str) -> None:
    url = with_password(postgres_url)
    env = {"LLM_MUX_MEMORY_URL": url}
    write_workflow(Path.cwd(), "remember", FACTS_WORKFLOW)
    result = cli("run", "remember", "-o", "json", "--debug", env=env)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["steps"]["recall"]["output"] == '"uses JWT"'
    label = "127.0.0.1:" + url.split(":")[-1]
    assert doc["steps"]["store"]["json"]["database"] == label
    listed = cli("memory", "facts", "-o", "json", env=env)
    assert listed.exit_code == 0, listed.stderr
    assert [f["fact"] for f in json.loads(listed.stdout)["facts"]] == ["uses JWT"]
    assert json.loads(listed.stdout)["database"] == label
    table = cli("memory", "relationships", env=env)
    assert "calls_api" in table.stdout
    for output in (result.output, listed.output, table.output):
        assert PASSWORD not in output
    with MemoryStore(url).session("read") as db:
        assert PASSWORD not in repr(
            [db.rows(f"SELECT * FROM {t}") for t in ("facts", "workflow_runs")]
        )


def test_defaults_memory_url_in_the_config(cli, postgres_url: str, tmp_path: Path) -> None:
    config = tmp_path / "kb.toml"
    config.write_text(f'[defaults]\nmemory_url = "{postgres_url}"\n')
    write_workflow(Path.cwd(), "remember", FACTS_WORKFLOW)
    assert cli("run", "remember", "-q", "--config", str(config)).exit_code == 0
    assert not (Path.home() / ".config" / "llm-mux" / "memory" / "default.db").exists()
    facts = json.loads(cli("memory", "-o", "json", "--config", str(config)).stdout)["facts"]
    assert [f["fact"] for f in facts] == ["uses JWT"]


def test_a_database_that_is_down_fails_clearly(cli) -> None:
    port = closed_port()
    env = {"LLM_MUX_MEMORY_URL": f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/kb"}
    listed = cli("memory", "facts", env=env)
    assert listed.exit_code == 1
    assert f"memory database unavailable at 127.0.0.1:{port}/kb (" in listed.stderr
    assert "Traceback" not in listed.stderr
    write_workflow(Path.cwd(), "remember", FACTS_WORKFLOW)
    run = cli("run", "remember", "-o", "json", env=env)
    assert run.exit_code == 1
    assert (
        f"unavailable at 127.0.0.1:{port}/kb" in json.loads(run.stdout)["steps"]["store"]["error"]
    )
    for output in (listed.output, run.output):
        assert PASSWORD not in output


def test_without_the_extra_the_error_names_it(cli, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "psycopg"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('psycopg is not installed here')\n")
    env = {
        "LLM_MUX_MEMORY_URL": f"postgresql://app:{PASSWORD}@127.0.0.1:5/kb",
        "PYTHONPATH": str(shadow.parent),
    }
    result = cli("memory", "facts", env=env)
    assert result.exit_code == 2
    assert "llm-mux[postgres]" in result.stderr and PASSWORD not in result.output


def test_doctor_reports_whether_the_database_answers(cli, postgres_url: str) -> None:
    url = with_password(postgres_url)
    answers = cli("doctor", "-o", "json", env={"LLM_MUX_MEMORY_URL": url})
    assert answers.exit_code == 0, answers.output
    memory = json.loads(answers.stdout)["memory"]
    assert memory["available"] is True and memory["configured"] is True
    assert memory["database"] == "127.0.0.1:" + url.split(":")[-1]
    assert "PostgreSQL 15" in memory["detail"]
    port = closed_port()
    down_url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/kb"
    down = cli("doctor", env={"LLM_MUX_MEMORY_URL": down_url})
    assert down.exit_code == 1
    assert f"unavailable at 127.0.0.1:{port}/kb (Connection refused)" in down.stdout
    as_json = json.loads(cli("doctor", "-o", "json", env={"LLM_MUX_MEMORY_URL": down_url}).stdout)
    assert as_json["memory"]["available"] is False
    for output in (answers.output, down.output, json.dumps(as_json)):
        assert PASSWORD not in output


def test_a_silent_database_fails_within_connect_timeout(cli) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/kb?connect_timeout=2"
        started = time.monotonic()
        result = cli("memory", "facts", env={"LLM_MUX_MEMORY_URL": url})
        elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert f"memory database unavailable at 127.0.0.1:{port}/kb (" in result.stderr
    assert elapsed < 8 and PASSWORD not in result.output
