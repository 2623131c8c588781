"""``llm-mux validate``: exit 0 or 2, every problem at once, warnings on stderr, examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.wf_project import write_config, write_workflow

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "workflows").glob("*.toml"))

BROKEN = """
name = "broken"
timout = 5

[[steps]]
name = "a"
type = "shel"
run = "true"

[[steps]]
name = "b"
type = "query"
role = "analyser"
prompt = "{{ steps.c.output }}"
depends_on = ["c"]

[[steps]]
name = "c"
type = "shell"
run = "echo {{ steps.b.output }}"
depends_on = ["b"]
"""


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_validates(cli, tmp_path: Path, example: Path) -> None:
    result = cli("validate", str(example), "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert "is valid" in result.stdout
    assert "warning" not in result.stderr


def test_there_are_examples() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"review", "parallel-analysis", "fix", "bug-hunt", "discover-ecosystem"} <= names


def test_all_errors_at_once_with_file_and_step(cli, tmp_path: Path) -> None:
    path = write_workflow(Path.cwd(), "broken", BROKEN)
    result = cli("validate", "broken", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2
    assert result.stdout == ""
    err = result.stderr
    assert f"{path}:3: unknown key 'timout' (did you mean 'timeout'?)" in err
    assert f"{path}:7: step 'a': unknown step type 'shel' (did you mean 'shell'?)" in err
    assert "step 'b': unknown role 'analyser' (did you mean 'analyzer'?)" in err
    assert "dependency cycle: b → c → b" in err
    assert "Traceback" not in err


def test_json_report(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "broken", BROKEN)
    result = cli("validate", "broken", "-o", "json", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["valid"] is False and doc["workflow"] == "broken"
    assert {e["step"] for e in doc["errors"]} >= {"a", "b"}
    assert all(e["file"].endswith("broken.toml") for e in doc["errors"])


def test_warnings_keep_exit_zero(cli, tmp_path: Path) -> None:
    text = '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\ntimeout = 3000\n'
    write_workflow(Path.cwd(), "wf", text)
    extra = '[backends.leaky]\ncommand = "x"\nargs = ["--token", "${MY_API_TOKEN}"]\n'
    result = cli("validate", "wf", "--config", str(write_config(tmp_path, extra)))
    assert result.exit_code == 0, result.stderr
    assert "timeout = 3000 is 3000 seconds" in result.stderr and '"3000ms"' in result.stderr
    assert "${MY_API_TOKEN}" in result.stderr and "env" in result.stderr
    assert "is valid" in result.stdout


def test_run_refuses_an_invalid_workflow_before_running_anything(cli, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f'[[steps]]\nname = "first"\ntype = "shell"\nrun = "touch {marker}"\n'
    text += '[[steps]]\nname = "second"\ntype = "shell"\nrun = "echo {{ steps.first.output }}"\n'
    write_workflow(Path.cwd(), "wf", text)
    result = cli("run", "wf", "-o", "json")
    assert result.exit_code == 2
    assert "not among its dependencies" in result.stderr
    assert not marker.exists()
    assert cli("validate", "wf").exit_code == 2


def test_unknown_workflow(cli) -> None:
    result = cli("validate", "nothing-here")
    assert result.exit_code == 2
    assert "no workflows found" in result.stderr


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_validate_against_the_example_config(cli, example: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "examples" / "config.toml"
    result = cli("validate", str(example), "--config", str(config))
    assert result.exit_code == 0, result.stderr
