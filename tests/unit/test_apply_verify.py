"""The apply step's verify command and the prompt for another try, through a real run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_mux.templates import render
from llm_mux.workflow.api import arun_workflow
from llm_mux.workflow.steps.verify import OUTPUT_TAIL, retry_prompt
from tests.fakes.fixtures import make_config
from tests.fakes.wf_project import write_workflow


class Context:
    """What ``retry_prompt`` uses of a step context: rendering with the run's values."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = values or {}

    async def render(self, template: str, field: str, extra: dict[str, Any]) -> str:
        return render(template, {**self.values, **extra}, where=field)


async def verified(tmp_path: Path, verify: str) -> dict[str, Any]:
    """Apply one inline edit, run ``verify``, and return the step's JSON result."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "value.txt").write_text("1\n")
    text = (
        '[[steps]]\nname = "apply"\ntype = "apply"\n'
        'edits = [{ path = "value.txt", old = "1", new = "2" }]\n'
        f"verify = '''{verify}'''\n"
    )
    write_workflow(root, "wf", text)
    config = make_config({"m": {"type": "mock", "response": "x"}})
    result = await arun_workflow("wf", config=config, cwd=root)
    step: dict[str, Any] = result.document()["steps"]["apply"]
    return step


async def test_passing_command_runs_in_the_project_dir(tmp_path: Path) -> None:
    step = await verified(tmp_path, "cat value.txt; echo checked")
    assert step["status"] == "success"
    assert step["verify_output"].splitlines() == ["2", "checked"]


async def test_failing_command_keeps_exit_code_and_both_streams(tmp_path: Path) -> None:
    step = await verified(tmp_path, "echo to-out; echo to-err >&2; exit 3")
    assert step["status"] == "failed" and "exit code 3" in step["error"]
    assert "to-out" in step["verify_output"] and "to-err" in step["verify_output"]
    assert step["rolled_back"] is True
    assert (tmp_path / "proj" / "value.txt").read_text() == "1\n"


async def test_missing_program_is_a_failure(tmp_path: Path) -> None:
    step = await verified(tmp_path, "no-such-program-xyz")
    assert step["status"] == "failed" and "exit code 127" in step["error"]
    assert "no-such-program-xyz" in step["verify_output"]


async def test_env_and_shell_syntax(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERIFY_LEVEL", "strict")
    step = await verified(tmp_path, 'test "$VERIFY_LEVEL" = strict && echo "$VERIFY_LEVEL"')
    assert step["status"] == "success" and step["verify_output"] == "strict"


async def test_output_is_a_tail(tmp_path: Path) -> None:
    step = await verified(tmp_path, "seq 1 20000")
    output = step["verify_output"]
    assert output.endswith("19999\n20000")
    assert len(output) == OUTPUT_TAIL + 1 and output.startswith("…")


async def test_retry_prompt_default_holds_prompt_edits_and_output() -> None:
    text = await retry_prompt(
        Context(), None, "Fix the bug in a.py", '{"path": "a.py"}', "FAILED test_a\n"
    )
    assert text.startswith("Fix the bug in a.py\n\n")
    assert '{"path": "a.py"}' in text and "FAILED test_a" in text
    assert "rolled back" in text


async def test_retry_prompt_values_are_never_rendered_again() -> None:
    template = "Tests said:\n{{ verify_output }}\nTry again."
    text = await retry_prompt(
        Context(), template, "Original", "edits", "output mentions {{ edits }}"
    )
    assert text == "Original\n\nTests said:\noutput mentions {{ edits }}\nTry again.\n"
    default = await retry_prompt(Context(), None, "Original", "{{ 6 * 7 }}", "{% raw %}")
    assert "{{ 6 * 7 }}" in default and "{% raw %}" in default


async def test_retry_prompt_template_without_placeholders_is_used_as_is() -> None:
    text = await retry_prompt(Context(), "The tests failed; fix them.", "Original", "edits", "boom")
    assert text == "Original\n\nThe tests failed; fix them.\n"


async def test_retry_prompt_with_the_original_prompt_is_the_whole_prompt() -> None:
    template = "{{ original_prompt }} (again, {{ args.why }}): {{ verify_output }}"
    text = await retry_prompt(
        Context({"args": {"why": "tests"}}), template, "Fix a.py", "e", "FAILED"
    )
    assert text == "Fix a.py (again, tests): FAILED\n"
