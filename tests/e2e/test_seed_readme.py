"""Every TOML example of the seed README, exactly as written, with fakes for the agent CLIs.

``tests/data/seed_README.md`` is the user's reference. Its config blocks are merged into one
config file (the way a user pastes them into ``config.toml``); every workflow block is
validated and run in a project of the README's own ecosystem, with fake ``claude``,
``codex``, ``gemini``, ``ollama``, ``gh`` and ``cargo`` on PATH. The README leaves two names
undefined — the ``coder`` role and a ``gemini`` backend — so a second ``--config`` adds them;
the Iteration snippet refers to a ``list`` step it does not show, which is supplied together
with the ``depends_on`` that makes its value exist (SPEC §2: a reference must name an ancestor).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliResult

README = Path(__file__).resolve().parent.parent / "data" / "seed_README.md"
AGENT = Path(__file__).resolve().parent.parent / "fakes" / "seed_agent.py"
AGENTS = ("claude", "codex", "gemini", "ollama")
MISSING_FROM_THE_README = """
[backends.gemini]
command = "gemini"
args = ["-p"]

[roles.coder]
backends = ["claude"]
"""
LIST_STEP = '[[steps]]\nname = "list"\ntype = "shell"\nrun = "ls *.txt"\n\n'


def toml_blocks() -> list[tuple[str, str]]:
    """(the heading above it, the block) for every ```toml block of the README."""
    blocks, heading = [], ""
    fenced = re.compile(r"^(#+ [^\n]*)$|^```toml\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    for match in fenced.finditer(README.read_text(encoding="utf-8")):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            blocks.append((heading, match.group(2)))
    return blocks


CONFIG_BLOCKS = [text for _, text in toml_blocks() if "[[steps]]" not in text]
WORKFLOWS = [(heading, text) for heading, text in toml_blocks() if "[[steps]]" in text]


def test_the_readme_copy_has_every_example() -> None:
    assert len(CONFIG_BLOCKS) == 5  # backends, roles, backend options, teams, ecosystems
    assert [heading for heading, _ in WORKFLOWS] == [
        "4. Create a Workflow",
        "Step Types",
        "Conditionals",
        "Iteration",
        "Store Steps and Ecosystem Memory",
        "Simple Review",
        "Parallel Analysis",
        "Fix with Verification",
        "Ecosystem-Aware Bug Hunt",
        "Ecosystem Discovery",
    ]
    assert set(EXPECTED) == {heading for heading, _ in WORKFLOWS}


def write_bin(directory: Path) -> None:
    directory.mkdir()
    for name in AGENTS:
        script = directory / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{AGENT}" {name} "$@"\n')
        script.chmod(0o755)
    scripts = {
        "gh": "#!/bin/sh\necho \"Issue $3: the word 'bug' in bug.txt should be fixed\"\n",
        "cargo": '#!/bin/sh\n[ "$1" = test ] && exec grep -q fixed bug.txt\nexit 0\n',
    }
    for name, text in scripts.items():
        (directory / name).write_text(text)
        (directory / name).chmod(0o755)


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env.update(GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=env)


def project_of_the_readme(home: Path) -> Path:
    """~/projects/myapp-api, the README's `api` project: a Rust crate in git with a bug."""
    project = home / "projects" / "myapp-api"
    project.mkdir(parents=True)
    git(project, "init", "-q")
    (project / "Cargo.toml").write_text('[package]\nname = "api"\n')
    (project / "bug.txt").write_text("a bug here\n")
    (project / "notes.txt").write_text("one\ntwo\n")
    git(project, "add", ".")
    git(project, "commit", "-qm", "one")
    (project / "notes.txt").write_text("one\ntwo\nthree\n")
    git(project, "commit", "-qam", "two")
    return project


@pytest.fixture
def seed(tmp_path: Path, isolated_home: Path) -> tuple[Path, list[str], dict[str, str]]:
    """The project, the --config options and the PATH for running the README's examples."""
    write_bin(tmp_path / "bin")
    config = tmp_path / "seed-config.toml"
    config.write_text("\n\n".join(CONFIG_BLOCKS), encoding="utf-8")
    extra = tmp_path / "missing-from-the-readme.toml"
    extra.write_text(MISSING_FROM_THE_README, encoding="utf-8")
    options = ["--config", str(config), "--config", str(extra)]
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return project_of_the_readme(isolated_home), options, env


def test_the_readme_config_loads_and_lists(cli, seed) -> None:  # type: ignore[no-untyped-def]
    project, options, env = seed
    for command in ("backends", "roles", "teams", "ecosystems"):
        result = cli(command, "-o", "json", *options, cwd=project, env=env)
        assert result.exit_code == 0, result.stderr
    listed = json.loads(cli("backends", "-o", "json", *options, cwd=project, env=env).stdout)
    assert {"claude", "codex", "ollama", "openai", "local", "example"} <= set(listed["backends"])


@pytest.mark.parametrize(
    ("heading", "text"), WORKFLOWS, ids=[f"{i}-{h}" for i, (h, _) in enumerate(WORKFLOWS)]
)
def test_every_readme_workflow_runs_as_written(cli, seed, heading: str, text: str) -> None:  # type: ignore[no-untyped-def]
    project, options, env = seed
    if "steps.list.output" in text and 'name = "list"' not in text:
        text = LIST_STEP + text.rstrip("\n") + '\ndepends_on = ["list"]\n'  # see the docstring
    workflows = project / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "example.toml").write_text(text, encoding="utf-8")
    checked = cli("validate", "example", *options, cwd=project, env=env)
    assert checked.exit_code == 0, checked.stderr
    assert "timeout" not in checked.stderr
    result = cli("run", "example", "file=bug.txt", "issue=7", "-o", "json", *options,
                 cwd=project, env=env)  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert not [name for name, step in steps.items() if step["failed"]]
    for step, key, expected in EXPECTED.get(heading, []):
        assert expected in json.dumps(steps[step][key]), (step, key, steps[step][key])
    check_effects(project, steps)


EXPECTED: dict[str, list[tuple[str, str, str]]] = {  # (step, field, text it holds)
    "4. Create a Workflow": [("diff", "output", "+three"), ("analyze", "backends", "codex")],
    "Step Types": [
        ("fetch", "output", "Issue 7"),
        ("fix", "output", "applied: bug.txt"),
        ("save_facts", "output", "stored 1 fact"),
    ],
    "Conditionals": [("rust-only", "skipped", "false")],  # Cargo.toml: the rust team
    "Iteration": [("check-files", "output", "3 notes.txt")],
    "Store Steps and Ecosystem Memory": [("store", "output", "stored 2 facts")],
    "Simple Review": [("review", "outputs", "claude says: Review this diff:")],
    "Parallel Analysis": [("analyze", "outputs", "gemini says: Find bugs in: bug.txt")],
    "Fix with Verification": [("apply", "output", "applied: bug.txt; verify passed")],
    "Ecosystem-Aware Bug Hunt": [("analyze", "output", "Search for potential bugs in api.")],
    "Ecosystem Discovery": [("store", "output", "stored 2 facts")],
}


def check_effects(project: Path, steps: dict[str, dict[str, object]]) -> None:
    """What each kind of step should have left behind."""
    kinds = {name: step for name, step in steps.items() if not step["skipped"]}
    if any("applied" in str(step.get("output")) for step in kinds.values()):
        assert (project / "bug.txt").read_text() == "a fixed here\n"
    stored = [step for step in kinds.values() if str(step.get("output")).startswith("stored")]
    if stored:
        database = project.parents[1] / ".config" / "llm-mux" / "memory" / "myapp.db"
        with sqlite3.connect(database) as db:
            sources = {row[0] for row in db.execute("SELECT source FROM facts")}
        assert sources and sources <= {"claude", "codex"}


def test_discovery_stores_both_analyzers_facts(cli, seed) -> None:  # type: ignore[no-untyped-def]
    project, options, env = seed
    text = dict(WORKFLOWS)["Ecosystem Discovery"]
    workflows = project / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "discover.toml").write_text(text, encoding="utf-8")
    result: CliResult = cli("run", "discover", "-o", "json", *options, cwd=project, env=env)
    assert result.exit_code == 0, result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert [doc["facts"][0]["source"] for doc in steps["analyze"]["json"]] == ["claude", "codex"]
    assert steps["store"]["json"]["facts"] == 2
