"""Store steps end to end: JSON into the SQLite memory, read back by templates and the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

from tests.conftest import llm_mux_executable

FACTS_WORKFLOW = """
name = "remember"

[[steps]]
name = "gen"
type = "shell"
run = '''printf '%s' '{"facts": [{"project": "api", "fact": "uses JWT", "source": "auth.py",
 "confidence": 0.9, "category": "security"}], "relationships": [{"from": "web", "to": "api",
 "type": "calls_api", "evidence": "fetch calls"}]}' '''

[[steps]]
name = "store"
type = "store"
prompt = "Here you go:\\n```json\\n{{ steps.gen.output }}\\n```"
depends_on = ["gen"]

[[steps]]
name = "recall"
type = "shell"
run = "printf '%s' {{ memory.facts(project='api') | map(attribute='fact') | join(',') | tojson }}"
depends_on = ["store"]
"""

ECOSYSTEM_CONFIG = """
[ecosystems.shop]
description = "A shop"

[ecosystems.shop.projects.api]
path = "{path}"
"""


def memory_dir(home: Path) -> Path:
    return home / ".config" / "llm-mux" / "memory"


def write_workflow(root: Path, name: str, text: str) -> None:
    directory = root / ".llm-mux" / "workflows"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.toml").write_text(text)


def test_store_then_read_back_in_templates_and_cli(cli, isolated_home: Path) -> None:
    write_workflow(Path.cwd(), "remember", FACTS_WORKFLOW)
    result = cli("run", "remember", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["steps"]["store"]["output"] == "stored 1 fact, 1 relationship, 0 entities"
    assert doc["steps"]["recall"]["output"] == '"uses JWT"'
    assert (memory_dir(isolated_home) / "default.db").exists()
    facts = json.loads(cli("memory", "facts", "--project", "api", "-o", "json").stdout)
    assert [f["fact"] for f in facts["facts"]] == ["uses JWT"]
    rels = json.loads(cli("memory", "relationships", "-o", "json").stdout)["relationships"]
    assert (rels[0]["from_project"], rels[0]["to_project"]) == ("web", "api")


def test_repeated_run_upserts(cli) -> None:
    write_workflow(Path.cwd(), "remember", FACTS_WORKFLOW)
    assert cli("run", "remember", "-q").exit_code == 0
    assert cli("run", "remember", "-q").exit_code == 0
    facts = json.loads(cli("memory", "facts", "-o", "json").stdout)["facts"]
    assert len(facts) == 1


def test_invalid_input_stores_nothing_and_fails_clearly(cli, isolated_home: Path) -> None:
    workflow = """
[[steps]]
name = "store"
type = "store"
prompt = '{"facts": [{"project": "a", "fact": "x", "source": "s"}, {"project": "b", "fact": "y"}]}'
"""
    write_workflow(Path.cwd(), "bad", workflow)
    result = cli("run", "bad", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert "facts[1]: missing field 'source'" in doc["steps"]["store"]["error"]
    # the database holds the run's ledger (for --resume), and no knowledge at all
    with sqlite3.connect(memory_dir(isolated_home) / "default.db") as conn:
        for table in ("facts", "relationships", "entities", "entity_history"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,), table


def test_run_inside_an_ecosystem_records_the_run(cli, tmp_path: Path, isolated_home: Path) -> None:
    project = tmp_path / "api"
    project.mkdir()
    config = tmp_path / "eco.toml"
    config.write_text(ECOSYSTEM_CONFIG.format(path=project))
    write_workflow(project, "remember", FACTS_WORKFLOW)
    result = cli("run", "remember", "-q", "--config", str(config), cwd=project)
    assert result.exit_code == 0, result.stderr
    assert (memory_dir(isolated_home) / "shop.db").exists()
    runs = json.loads(
        cli("memory", "runs", "-o", "json", "--config", str(config), cwd=project).stdout
    )
    assert [r["workflow"] for r in runs["runs"]] == ["remember"]
    assert runs["runs"][0]["project"] == "api"


def test_four_concurrent_runs_lose_nothing(isolated_home: Path, tmp_path: Path) -> None:
    import os

    procs = []
    for worker in range(4):
        facts = [
            {"project": f"p{worker}", "fact": f"fact {i}", "source": "bench"} for i in range(50)
        ]
        workdir = tmp_path / f"w{worker}"
        workdir.mkdir()
        (workdir / "facts.json").write_text(json.dumps({"facts": facts}))
        workflow = (
            '[[steps]]\nname = "read"\ntype = "shell"\nrun = "cat facts.json"\n\n'
            '[[steps]]\nname = "store"\ntype = "store"\nprompt = "{{ steps.read.output }}"\n'
            'depends_on = ["read"]\n'
        )
        write_workflow(workdir, "bulk", workflow)
        procs.append(
            subprocess.Popen(
                [llm_mux_executable(), "run", "bulk", "-q"],
                cwd=workdir,
                env=dict(os.environ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with sqlite3.connect(memory_dir(isolated_home) / "default.db") as conn:
        assert conn.execute("SELECT count(*) FROM facts").fetchone()[0] == 200
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
