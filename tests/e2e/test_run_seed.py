"""The workflow examples of the seed README, exactly as written, run against fake backends."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from tests.fakes.wf_project import LLM, document, write_config, write_workflow

QUICK_START_REVIEW = '''name = "review"
description = "Review code changes"

[[steps]]
name = "diff"
type = "shell"
run = "git diff HEAD~1"

[[steps]]
name = "analyze"
type = "query"
role = "analyzer"
prompt = """
Review these changes for bugs and improvements:

{{ steps.diff.output }}
"""
depends_on = ["diff"]
'''

SIMPLE_REVIEW = """# .llm-mux/workflows/review.toml
name = "review"

[[steps]]
name = "diff"
type = "shell"
run = "git diff"

[[steps]]
name = "review"
type = "query"
role = "analyzer"
prompt = "Review this diff:\\n{{ steps.diff.output }}"
depends_on = ["diff"]
"""

PARALLEL_ANALYSIS = """name = "analyze"

[roles.multi]
backends = ["claude", "codex", "gemini"]
execution = "parallel"

[[steps]]
name = "analyze"
type = "query"
role = "multi"
prompt = "Find bugs in: {{ args.file }}"
"""

FIX_WITH_VERIFICATION = '''name = "fix"

[[steps]]
name = "identify"
type = "query"
role = "analyzer"
prompt = "Find the bug in {{ args.file }}"

[[steps]]
name = "fix"
type = "query"
role = "coder"
prompt = """
Fix this bug: {{ steps.identify.output }}

Return edits as JSON: {"path": "...", "old": "...", "new": "..."}
"""
depends_on = ["identify"]

[[steps]]
name = "apply"
type = "apply"
source = "steps.fix"
verify = "cargo test"
verify_retries = 2
depends_on = ["fix"]
'''

BUG_HUNT = '''name = "bug-hunt"
description = "Search for bugs across ecosystem"

[[steps]]
name = "analyze"
type = "query"
role = "analyzer"
prompt = """
Search for potential bugs in {{ ecosystem.current_project.name }}.

Project type: {{ ecosystem.current_project.type }}

Known ecosystem facts:
{% for fact in ecosystem.knowledge %}
- {{ fact }}
{% endfor %}

Dependencies to consider:
{% for dep in ecosystem.current_project.depends_on %}
- {{ dep }}
{% endfor %}

Focus on common issues for {{ ecosystem.current_project.type }} projects.
"""
'''

DISCOVERY = '''name = "discover"
description = "Discover and store ecosystem facts"

[[steps]]
name = "analyze"
type = "query"
role = "analyzer"
timeout = 180
prompt = """
Analyze the {{ ecosystem.current_project.name }} project structure.

IMPORTANT: Return JSON with this exact structure:
{
  "facts": [
    {
      "project": "project-name",
      "fact": "brief fact description",
      "source": "where you found this (e.g., Cargo.toml)",
      "confidence": 1.0
    }
  ]
}

Each fact MUST have all four fields: project, fact, source, confidence.
"""

[steps.output_schema]
type = "object"
required = ["facts"]

[steps.output_schema.properties.facts]
type = "array"

[[steps]]
name = "store"
type = "store"
prompt = "{{ steps.analyze.output }}"
depends_on = ["analyze"]
'''

CONDITIONAL_AND_ITERATION = """
[[steps]]
name = "list"
type = "shell"
run = "ls *.txt"

[[steps]]
name = "rust-only"
type = "shell"
run = "cargo clippy"
if = "team == 'rust'"

[[steps]]
name = "check-files"
type = "shell"
run = "wc -l {{ item }}"
for_each = "steps.list.output | lines"
depends_on = ["list"]
"""

ECOSYSTEM = """
[ecosystems.myapp]
description = "MyApp web application and services"
knowledge = [
    "API uses JWT tokens with 1 hour expiration",
    "Database migrations run automatically on deploy",
]

[ecosystems.myapp.projects.api]
description = "REST API backend"
path = "~/projects/myapp-api"
type = "rust"
depends_on = ["database"]

[ecosystems.myapp.projects.database]
path = "~/projects/myapp-db"
type = "sql"

[teams.rust]
detect = ["Cargo.toml"]
verify = "cargo test"
"""


def git(*args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    subprocess.run(["git", *args], check=True, capture_output=True, env=env)


def repo_with_two_commits() -> None:
    git("init", "-q")
    Path("app.py").write_text("print('v1')\n")
    git("add", "app.py")
    git("commit", "-qm", "one")
    Path("app.py").write_text("print('v2')\n")
    git("commit", "-qam", "two")


def test_quick_start_review(cli, tmp_path: Path) -> None:
    repo_with_two_commits()
    write_workflow(Path.cwd(), "review", QUICK_START_REVIEW)
    result = cli("run", "review", "-o", "json", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    doc = document(result.stdout)
    assert "+print('v2')" in doc["steps"]["diff"]["output"]
    outputs = doc["steps"]["analyze"]["outputs"]
    assert [o.split(":")[0] for o in outputs] == ["claude saw", "codex saw"]
    assert "Review these changes for bugs and improvements" in outputs[0]


def test_simple_review(cli, tmp_path: Path) -> None:
    repo_with_two_commits()
    Path("app.py").write_text("print('v3')\n")
    write_workflow(Path.cwd(), "review", SIMPLE_REVIEW)
    result = cli("run", "review", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("claude saw: Review this diff:")
    assert "codex saw: Review this diff:" in result.stdout


def test_parallel_analysis(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "analyze", PARALLEL_ANALYSIS)
    result = cli(
        "run", "analyze", "file=src/main.rs", "-o", "json", "--config", str(write_config(tmp_path))
    )
    assert result.exit_code == 0, result.stderr
    step = document(result.stdout)["steps"]["analyze"]
    assert step["backends"] == ["claude", "codex", "gemini"]
    assert step["outputs"][2] == "gemini saw: Find bugs in: src/main.rs"


def test_fix_with_verification(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "fix", FIX_WITH_VERIFICATION)
    Path("bug.txt").write_text("a bug here\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cargo = bin_dir / "cargo"
    cargo.write_text("#!/bin/sh\ngrep -q fixed bug.txt\n")
    cargo.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = cli("run", "fix", "file=bug.txt", "--config", str(write_config(tmp_path)), env=env)
    assert result.exit_code == 0, result.stderr
    assert Path("bug.txt").read_text() == "a fixed here\n"


def test_bug_hunt_uses_the_ecosystem(cli, tmp_path: Path, isolated_home: Path) -> None:
    project = isolated_home / "projects" / "myapp-api"
    project.mkdir(parents=True)
    write_workflow(project, "bug-hunt", BUG_HUNT)
    config = write_config(tmp_path, ECOSYSTEM.replace('"claude", "codex"', '"claude"'))
    result = cli("run", "bug-hunt", "-o", "json", "--config", str(config), cwd=project)
    assert result.exit_code == 0, result.stderr
    output = document(result.stdout)["steps"]["analyze"]["outputs"][0]
    assert output == "claude saw: Search for potential bugs in api.  Project type: rust"


def test_discovery(cli, tmp_path: Path, isolated_home: Path) -> None:
    project = isolated_home / "projects" / "myapp-api"
    project.mkdir(parents=True)
    write_workflow(project, "discover", DISCOVERY)
    config = write_config(tmp_path, ECOSYSTEM)
    checked = cli("validate", "discover", "--config", str(config), cwd=project)
    assert checked.exit_code == 0, checked.stderr
    assert "timeout" not in checked.stderr  # 180 is seconds, as the seed means it
    result = cli("run", "discover", "-o", "json", "--config", str(config), cwd=project)
    assert result.exit_code == 0, result.stderr
    doc = document(result.stdout)
    analyzed = doc["steps"]["analyze"]["json"]  # the analyzer role runs claude and codex
    assert [d["facts"][0]["source"] for d in analyzed] == ["claude", "codex"]
    assert doc["steps"]["store"]["json"]["facts"] == 2
    database = isolated_home / ".config" / "llm-mux" / "memory" / "myapp.db"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT source FROM facts ORDER BY source").fetchall()
    assert rows == [("claude",), ("codex",)]


def test_a_parallel_answer_off_the_schema_counts_against_min_success(
    cli, tmp_path: Path, isolated_home: Path
) -> None:
    project = isolated_home / "projects" / "myapp-api"
    project.mkdir(parents=True)
    config = write_config(tmp_path, ECOSYSTEM)
    override = tmp_path / "override.toml"
    override.write_text(
        f'[backends.broken]\ncommand = "{LLM}"\nargs = ["broken"]\n'
        '[roles.analyzer]\nbackends = ["broken", "codex"]\nexecution = "parallel"\n'
    )
    options = ["-o", "json", "--config", str(config), "--config", str(override)]
    write_workflow(project, "discover", DISCOVERY)
    result = cli("run", "discover", *options, cwd=project)
    assert result.exit_code == 0, result.stderr
    steps = document(result.stdout)["steps"]
    assert steps["analyze"]["backends"] == ["codex"]
    assert [d["facts"][0]["source"] for d in steps["analyze"]["json"]] == ["codex"]
    assert steps["store"]["json"]["facts"] == 1
    strict = DISCOVERY.replace('role = "analyzer"', 'role = "analyzer"\nmin_success = 2')
    write_workflow(project, "discover", strict)
    failed = cli("run", "discover", *options, cwd=project)
    assert failed.exit_code == 1
    error = document(failed.stdout)["steps"]["analyze"]["error"]
    assert "1 of 2 answers match output_schema, fewer than min_success = 2" in error
    assert "broken: Parse: the answer does not match output_schema" in error
    assert document(failed.stdout)["steps"]["store"]["skipped"] is True


def test_conditionals_and_iteration(cli, tmp_path: Path) -> None:
    Path("a.txt").write_text("1\n2\n")
    Path("b.txt").write_text("1\n")
    write_workflow(Path.cwd(), "wf", CONDITIONAL_AND_ITERATION)
    config = write_config(tmp_path, ECOSYSTEM)
    result = cli("run", "wf", "-o", "json", "--config", str(config))
    assert result.exit_code == 0, result.stderr
    doc = document(result.stdout)
    assert doc["steps"]["rust-only"]["skipped"] is True
    assert doc["steps"]["check-files"]["output"] == "2 a.txt\n1 b.txt"
