"""Errors found before anything runs: one clear message, exit 2, and JSON when JSON was asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.wf_project import shell_steps, write_config, write_workflow


def one_document(stdout: str) -> dict[str, object]:
    """The whole of stdout as one JSON document (json.loads refuses a second one)."""
    data = json.loads(stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("placement", ["after", "before"])
def test_unknown_workflow_as_json(cli, placement: str) -> None:
    args = (
        ["run", "nosuch", "-o", "json"] if placement == "after" else ["-o", "json", "run", "nosuch"]
    )
    result = cli(*args)
    assert result.exit_code == 2
    document = one_document(result.stdout)
    assert document["success"] is False
    assert "unknown workflow 'nosuch'" in str(document["error"])
    assert "unknown workflow" in result.stderr


def test_template_syntax_error_as_json(cli) -> None:
    write_workflow(Path.cwd(), "broken", shell_steps(("a", "echo {{ x")))
    for command in ("run", "validate"):
        result = cli(command, "broken", "--output", "json")
        assert result.exit_code == 2, result.stderr
        document = one_document(result.stdout)
        assert document.get("success") is False or document.get("valid") is False
        assert "template syntax error" in json.dumps(document)


def test_bad_config_as_json(cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[backends.x\n", encoding="utf-8")
    write_workflow(Path.cwd(), "hello", shell_steps(("a", "echo hi")))
    for args in (("run", "hello"), ("ask", "x", "hi"), ("backends",)):
        result = cli(*args, "--config", str(config), "-o", "json")
        assert result.exit_code == 2, (args, result.stderr)
        document = one_document(result.stdout)
        assert document["success"] is False
        assert "bad.toml" in str(document["error"])


def test_usage_error_and_missing_argument_as_json(cli) -> None:
    missing = cli("-o", "json", "run")
    assert missing.exit_code == 2
    assert "WORKFLOW" in str(one_document(missing.stdout)["error"])
    unknown_arg = cli("run", "hello", "nope=1", "-o", "json")
    assert unknown_arg.exit_code == 2
    assert one_document(unknown_arg.stdout)["success"] is False


def test_a_failed_run_still_prints_exactly_one_document(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "fails", shell_steps(("a", "exit 3")))
    result = cli("run", "fails", "-o", "json")
    assert result.exit_code == 1
    document = one_document(result.stdout)
    assert document["workflow"] == "fails" and document["success"] is False


def test_console_output_prints_no_json_on_error(cli) -> None:
    result = cli("run", "nosuch")
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize("where", ["user", "project"])
def test_config_toml_that_is_a_directory(cli, isolated_home: Path, where: str) -> None:
    if where == "user":
        target = isolated_home / ".config" / "llm-mux" / "config.toml"
    else:
        target = Path.cwd() / ".llm-mux" / "config.toml"
    target.mkdir(parents=True)
    for args in (("backends",), ("roles", "-o", "json")):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert str(target) in result.stderr
        assert "is a directory" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["sub", "./sub", "sub/"])
def test_run_a_directory(cli, name: str) -> None:
    (Path.cwd() / "sub").mkdir()
    result = cli("run", name)
    assert result.exit_code == 2
    assert "is a directory, not a workflow file" in result.stderr
    assert "not found" not in result.stderr


def test_infinite_timeout_is_named(cli) -> None:
    write_workflow(Path.cwd(), "inf", shell_steps(("a", "echo hi"), timeout=float("inf")))
    text = (Path.cwd() / ".llm-mux" / "workflows" / "inf.toml").read_text()
    assert "timeout = Infinity" in text  # json.dumps spelling; TOML wants inf
    (Path.cwd() / ".llm-mux" / "workflows" / "inf.toml").write_text(
        text.replace("Infinity", "inf"), encoding="utf-8"
    )
    result = cli("validate", "inf")
    assert result.exit_code == 2
    assert "finite" in result.stderr
    assert "greater than zero" not in result.stderr


@pytest.mark.parametrize("where", ["header", "step"])
def test_negative_timeout_is_not_suggested_as_seconds(cli, where: str) -> None:
    if where == "header":
        text = "timeout = -5\n" + shell_steps(("a", "echo hi"))
    else:
        text = shell_steps(("a", "echo hi"), timeout=-5)
    write_workflow(Path.cwd(), "neg", text)
    for command in ("validate", "run"):
        result = cli(command, "neg")
        assert result.exit_code == 2
        assert "greater than zero" in result.stderr
        assert '"-5s"' not in result.stderr and "looks like seconds" not in result.stderr


def test_a_large_plain_timeout_still_warns(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "small", shell_steps(("a", "echo hi"), timeout=5))
    quiet = cli("validate", "small", "--config", str(write_config(tmp_path)))
    assert quiet.exit_code == 0, quiet.stderr
    assert "timeout" not in quiet.stderr  # 5 seconds, as written
    write_workflow(Path.cwd(), "large", shell_steps(("a", "echo hi"), timeout=5000))
    result = cli("validate", "large", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert '"5000ms"' in result.stderr
