"""Shell ``run`` templates through the real CLI: nested shells and bash's arithmetic words."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fakes.wf_project import document, write_config, write_workflow

NESTED = """
[args.v]
required = true

[[steps]]
name = "nested"
type = "shell"
run = '''
bash -c 'printf "%s|" {{ args.v | shell_escape }}'
sh -c "printf '%s|' {{ args.v | shell_escape }}"
eval "printf '%s' {{ args.v | shell_escape }}"
'''
"""

BASH_ARITHMETIC = """
[args.v]
required = true

[[steps]]
name = "count"
type = "shell"
run = '''
touch started
declare -i n
n={{ args.v }}
'''
"""


@pytest.mark.parametrize(
    "value", ["a b; touch pwned", "'; touch pwned; '", '"$(touch pwned)"', "x\\\n`touch pwned`"]
)
def test_shell_escape_hands_nested_shells_exactly_the_value(
    cli, tmp_path: Path, value: str
) -> None:
    if not shutil.which("bash"):
        pytest.skip("bash is not installed")
    write_workflow(Path.cwd(), "nested", NESTED)
    config = str(write_config(tmp_path))
    result = cli("run", "nested", f"v={value}", "--config", config, "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert document(result.stdout)["output"] == f"{value}|{value}|{value}"
    assert not (Path.cwd() / "pwned").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
def test_bash_arithmetic_words_are_refused_before_anything_runs(
    cli, tmp_path: Path, command: str
) -> None:
    path = write_workflow(Path.cwd(), "count", BASH_ARITHMETIC)
    config = str(write_config(tmp_path))
    args = [command, str(path)] + (["v=a[$(touch pwned)]"] if command == "run" else [])
    result = cli(*args, "--config", config)
    assert result.exit_code == 2, result.output
    assert "count" in result.stderr and "line 3" in result.stderr
    assert "declares integer" in result.stderr and "Traceback" not in result.stderr
    assert not (Path.cwd() / "started").exists() and not (Path.cwd() / "pwned").exists()


def test_a_refusal_in_json_mode_keeps_stdout_clean_of_the_value(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "count", BASH_ARITHMETIC)
    config = str(write_config(tmp_path))
    result = cli("run", "count", "v=a[$(touch pwned)]", "--config", config, "-o", "json")
    assert result.exit_code == 2
    assert "touch pwned" not in result.stderr
    if result.stdout.strip():
        assert json.loads(result.stdout)["success"] is False
