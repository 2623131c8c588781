"""Query steps end to end against fake CLI backends and scripted mock backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes.wf_project import document, write_config, write_workflow

MOCKS = """
[backends.facts]
type = "mock"
response = 'Sure! ```json\\n{"facts": [{"fact": "x"}]}\\n```'

[backends.braces]
type = "mock"
response = "I answer {{ args.secret }} and {% raw %}"

[backends.slow]
type = "mock"
response = "late"
delay = 3000

[backends.broken]
type = "mock"
fail = "auth"

[roles.both]
backends = ["broken", "claude"]
execution = "parallel"
"""


def run(cli: Any, tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, Any], str]:
    write_workflow(Path.cwd(), "wf", text)
    config = write_config(tmp_path, MOCKS)
    result = cli("run", "wf", "-o", "json", "--config", str(config), *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, document(result.stdout), result.stderr


def query(name: str, prompt: str, target: str = 'role = "analyzer"', extra: str = "") -> str:
    return f'[[steps]]\nname = "{name}"\ntype = "query"\n{target}\nprompt = """{prompt}"""\n{extra}'


def test_parallel_role_outputs_in_role_order(cli, tmp_path: Path) -> None:
    text = query("ask", "Look at {{ args.file }}")
    text += query(
        "use",
        "{{ steps.ask.outputs[0] }}|{{ steps.ask.outputs.codex }}|"
        "{{ steps.ask.outputs['claude'] }}|{{ steps.ask.outputs | join(',') }}",
        target='backend = "echo"',
        extra='depends_on = ["ask"]\n',
    )
    code, doc, _ = run(cli, tmp_path, text, "file=main.rs")
    assert code == 0, doc["error"]
    ask = doc["steps"]["ask"]
    assert ask["outputs"] == ["claude saw: Look at main.rs", "codex saw: Look at main.rs"]
    assert ask["output"] == "\n\n".join(ask["outputs"])
    assert ask["backends"] == ["claude", "codex"]
    claude, codex = ask["outputs"]
    assert doc["steps"]["use"]["output"] == f"{claude}|{codex}|{claude}|{claude},{codex}"
    assert doc["steps"]["use"]["backend"] == "echo"
    assert doc["steps"]["use"]["usage"]["total_tokens"] > 0


def test_workflow_roles_and_parallel_flag(cli, tmp_path: Path) -> None:
    text = '[roles.multi]\nbackends = ["gemini", "claude"]\n\n'
    text += query("ask", "hi", target='role = "multi"\nparallel = true')
    _code, doc, _ = run(cli, tmp_path, text)
    assert doc["steps"]["ask"]["backends"] == ["gemini", "claude"]


def test_min_success(cli, tmp_path: Path) -> None:
    code, doc, _ = run(cli, tmp_path, query("ask", "hi", 'role = "both"', "min_success = 1\n"))
    assert code == 0 and doc["steps"]["ask"]["backends"] == ["claude"]
    code, doc, _ = run(cli, tmp_path, query("ask", "hi", 'role = "both"', "min_success = 2\n"))
    assert code == 1
    assert "broken" in doc["steps"]["ask"]["error"] and "Auth" in doc["steps"]["ask"]["error"]


def test_output_schema_extracts_and_validates_json(cli, tmp_path: Path) -> None:
    schema = '[steps.output_schema]\ntype = "object"\nrequired = ["facts"]\n'
    text = query("ask", "facts?", 'backend = "facts"', schema)
    text += query(
        "use", "{{ steps.ask.json.facts[0].fact }}", 'backend = "echo"', 'depends_on = ["ask"]\n'
    )
    code, doc, _ = run(cli, tmp_path, text)
    assert code == 0, doc["error"]
    assert doc["steps"]["ask"]["json"] == {"facts": [{"fact": "x"}]}
    assert doc["steps"]["use"]["output"] == "x"
    bad = schema.replace('"facts"]', '"relationships"]')
    code, doc, _ = run(cli, tmp_path, query("ask", "facts?", 'backend = "facts"', bad))
    assert code == 1
    assert "'relationships' is a required property" in doc["steps"]["ask"]["error"]
    assert doc["steps"]["ask"]["output"].startswith("Sure!")


def test_model_output_is_never_rendered(cli, tmp_path: Path) -> None:
    text = query("ask", "x", 'backend = "braces"')
    text += query(
        "use", "got: {{ steps.ask.output }}", 'backend = "echo"', 'depends_on = ["ask"]\n'
    )
    text += '[[steps]]\nname = "sh"\ntype = "shell"\nrun = "echo {{ steps.ask.output }}"\n'
    text += 'depends_on = ["ask"]\n'
    code, doc, _ = run(cli, tmp_path, text, "secret=LEAK")
    assert code == 0, doc["error"]
    assert doc["steps"]["use"]["output"] == "got: I answer {{ args.secret }} and {% raw %}"
    assert doc["steps"]["sh"]["output"] == "I answer {{ args.secret }} and {% raw %}"


def test_query_timeout_and_retries(cli, tmp_path: Path) -> None:
    text = query("ask", "x", 'backend = "slow"', 'timeout = "300ms"\nretries = 3\n')
    code, doc, _ = run(cli, tmp_path, text)
    assert code == 1
    assert "timed out after 300ms" in doc["steps"]["ask"]["error"]
    assert doc["duration_ms"] < 2500


def test_backend_progress_lines(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "wf", query("ask", "hi"))
    result = cli("run", "wf", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    assert "[ask: claude] running" in result.stderr
    assert "[ask: codex] done" in result.stderr
    assert result.stdout.startswith("claude saw: hi")


def test_unknown_role_is_refused_before_running(cli, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f'[[steps]]\nname = "mark"\ntype = "shell"\nrun = "touch {marker}"\n'
    text += query("ask", "x", 'role = "analyser"')
    write_workflow(Path.cwd(), "wf", text)
    result = cli("run", "wf", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 2
    assert "unknown role 'analyser' (did you mean 'analyzer'?)" in result.stderr
    assert not marker.exists()
