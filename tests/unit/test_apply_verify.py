"""The verify command and the prompt for another try."""

from __future__ import annotations

import os
import time
from pathlib import Path

from llm_mux.apply import Replace, apply_edits, retry_prompt, run_verify


async def test_passing_command_runs_in_the_project_dir(tmp_path: Path) -> None:
    (tmp_path / "marker.txt").write_text("here\n")
    result = await run_verify("cat marker.txt; echo checked", tmp_path, timeout=10)
    assert result.ok and result.exit_code == 0
    assert result.output.splitlines() == ["here", "checked"]


async def test_failing_command_keeps_exit_code_and_both_streams(tmp_path: Path) -> None:
    result = await run_verify("echo to-out; echo to-err >&2; exit 3", tmp_path, timeout=10)
    assert not result.ok and result.exit_code == 3
    assert "to-out" in result.output and "to-err" in result.output
    assert not result.timed_out


async def test_missing_program_is_a_failure(tmp_path: Path) -> None:
    result = await run_verify("no-such-program-xyz", tmp_path, timeout=10)
    assert not result.ok and result.exit_code == 127
    assert "no-such-program-xyz" in result.output


async def test_timeout_is_a_failure_with_a_clear_message(tmp_path: Path) -> None:
    started = time.monotonic()
    result = await run_verify("sleep 30", tmp_path, timeout=0.5)
    assert time.monotonic() - started < 10
    assert not result.ok and result.timed_out
    assert "timed out after 0.5s" in result.output


async def test_env_and_shell_syntax(tmp_path: Path) -> None:
    env = {**os.environ, "VERIFY_LEVEL": "strict"}
    result = await run_verify(
        'test "$VERIFY_LEVEL" = strict && echo "$VERIFY_LEVEL"', tmp_path, timeout=10, env=env
    )
    assert result.ok and result.output == "strict"


async def test_output_is_a_tail(tmp_path: Path) -> None:
    result = await run_verify("seq 1 5000", tmp_path, timeout=10, tail=100)
    assert result.output.endswith("4999\n5000")
    assert len(result.output) <= 101
    assert "\n1\n" not in result.output


async def test_verify_sees_applied_edits_and_rollback_follows(tmp_path: Path) -> None:
    (tmp_path / "value.txt").write_text("1\n")
    txn = apply_edits([Replace("value.txt", "1", "2")], tmp_path)
    result = await run_verify('test "$(cat value.txt)" = 1', tmp_path, timeout=10)
    assert not result.ok
    txn.rollback()
    again = await run_verify('test "$(cat value.txt)" = 1', tmp_path, timeout=10)
    assert again.ok


def test_retry_prompt_default_holds_prompt_edits_and_output() -> None:
    text = retry_prompt("Fix the bug in a.py", '{"path": "a.py"}', "FAILED test_a\n", None)
    assert text.startswith("Fix the bug in a.py\n\n")
    assert '{"path": "a.py"}' in text and "FAILED test_a" in text
    assert "rolled back" in text


def test_retry_prompt_template_placeholders_filled_once() -> None:
    template = "Tests said:\n{{ verify_output }}\nTry again."
    text = retry_prompt("Original", "edits", "output mentions {{ edits }}", template)
    assert text == "Original\n\nTests said:\noutput mentions {{ edits }}\nTry again.\n"


def test_retry_prompt_template_without_placeholders_is_used_as_is() -> None:
    text = retry_prompt("Original", "edits", "boom", "The tests failed; fix them.")
    assert text == "Original\n\nThe tests failed; fix them.\n"
