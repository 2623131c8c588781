"""The apply step kind in-process: its static checks, its summary, cancellation, the lock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llm_mux import process
from llm_mux.workflow.api import arun_workflow
from llm_mux.workflow.model import parse_workflow
from llm_mux.workflow.steps.apply_state import ApplyState
from llm_mux.workflow.steps.verify import VerifyResult
from llm_mux.workflow.validate import check
from tests.fakes.fixtures import make_config

QUERY = '[[steps]]\nname = "fix"\ntype = "query"\nrole = "coder"\nprompt = "p"\n'
EDIT = 'edits = [{ path = "f.txt", old = "one", new = "two" }]'
SHELL = '[[steps]]\nname = "fix"\ntype = "shell"\nrun = "echo"\n'


def config(team_verify: str | None = None) -> Any:
    teams = {"t": {"detect": [], "verify": team_verify}} if team_verify else None
    return make_config(
        {"m": {"type": "mock", "response": '{"edits": []}'}},
        {"coder": {"backends": ["m"]}},
        teams=teams,
    )


def problems(tmp_path: Path, text: str, team_verify: str | None = None) -> list[str]:
    path = tmp_path / "wf.toml"
    path.write_text(text, encoding="utf-8")
    workflow, issues = parse_workflow(path)
    cfg = config(team_verify)
    report = check(workflow, issues, cfg, cfg.teams.get("t"))
    return [issue.message for issue in report.errors]


def apply_step(keys: str) -> str:
    return f'[[steps]]\nname = "apply"\ntype = "apply"\n{keys}\n'


# --- check ----------------------------------------------------------------------------------


def test_a_sound_apply_step_has_no_problems(tmp_path: Path) -> None:
    keys = 'source = "fix"\ndepends_on = ["fix"]\nverify = "true"\nverify_retries = 2'
    assert problems(tmp_path, QUERY + apply_step(keys)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            apply_step('edits = []\nverify = "true"\nverify_retries = 1'),
            "verify_retries asks the source step again; inline edits have none",
        ),
        (
            SHELL
            + apply_step('source = "fix"\ndepends_on = ["fix"]\nverify = "t"\nverify_retries = 1'),
            "'fix' is a shell step; only a query step can be asked again",
        ),
        (
            QUERY.replace('prompt = "p"', 'prompt = "{{ item }}"\nfor_each = "[1]"')
            + apply_step('source = "fix"\ndepends_on = ["fix"]\nverify = "t"\nverify_retries = 1'),
            "cannot ask 'fix' again: it has for_each",
        ),
        (
            QUERY + apply_step('source = "fix"\ndepends_on = ["fix"]\nverify_retries = 1'),
            "verify_retries has no effect without a verify command",
        ),
        (
            QUERY + apply_step('source = "fix"\ndepends_on = ["fix"]\nverify_retry_prompt = "x"'),
            "verify_retry_prompt has no effect without verify_retries",
        ),
        (
            apply_step('edits = [{ path = "../x", old = "", new = "y" }]'),
            "edit 1: path escapes the project root: ../x",
        ),
        (
            apply_step('edits = [{ path = ".git/config", old = "a", new = "b" }]'),
            "edit 1: path is off-limits: .git/config",
        ),
        (
            apply_step('edits = [{ old = "a", new = "b" }]'),
            'edit 1: missing "path"',
        ),
    ],
    ids=[
        "retries-inline",
        "retries-shell-source",
        "retries-for-each-source",
        "retries-no-verify",
        "retry-prompt-alone",
        "inline-escape",
        "inline-protected",
        "inline-malformed",
    ],
)
def test_check_reports(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(expected in message for message in found), found


def test_allow_paths_opens_a_protected_inline_path(tmp_path: Path) -> None:
    keys = 'edits = [{ path = ".llm-mux/notes", old = "", new = "y" }]\nallow_paths = [".llm-mux"]'
    assert problems(tmp_path, apply_step(keys)) == []


def test_the_team_verify_counts_for_verify_retries(tmp_path: Path) -> None:
    keys = 'source = "fix"\ndepends_on = ["fix"]\nverify_retries = 1'
    assert problems(tmp_path, QUERY + apply_step(keys), team_verify="make test") == []


def test_source_references_are_reported_once(tmp_path: Path) -> None:
    found = problems(tmp_path, QUERY + apply_step('source = "steps.fix"'))
    assert len([m for m in found if "steps.fix" in m]) == 1, found


# --- summary --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (ApplyState(1, note="no edits"), "nothing applied: no edits"),
        (ApplyState(1, ["a.py"]), "applied: a.py; not verified (no verify command)"),
        (
            ApplyState(2, ["a.py", "b.py"], verified=VerifyResult(True, 0, "")),
            "applied: a.py, b.py; verify passed (after 2 attempts)",
        ),
        (
            ApplyState(1, ["a.py"], verified=VerifyResult(False, 2, "x"), rolled_back=True),
            "applied: a.py; verify failed (exit code 2); rolled back",
        ),
        (
            ApplyState(1, ["a.py"], verified=VerifyResult(False, -15, "")),
            "applied: a.py; verify failed (killed by signal 15)",
        ),
    ],
)
def test_summary(state: ApplyState, expected: str) -> None:
    assert state.summary() == expected


# --- in-process runs ------------------------------------------------------------------------


def project(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "proj"
    (root / ".llm-mux" / "workflows").mkdir(parents=True)
    (root / ".llm-mux" / "workflows" / "wf.toml").write_text(text, encoding="utf-8")
    (root / "f.txt").write_text("one\n")
    return root


async def test_cancelling_the_run_during_verify_rolls_back(tmp_path: Path) -> None:
    marker = tmp_path / "verifying"
    keys = f'{EDIT}\nverify = "touch {marker}; sleep 30"'
    root = project(tmp_path, apply_step(keys))
    task = asyncio.create_task(arun_workflow("wf", config=config(), cwd=root))
    for _ in range(1000):  # the verify runs, and its spawn has returned (it is tracked)
        if marker.exists() and process.live_group_count():
            break
        await asyncio.sleep(0.01)
    assert (root / "f.txt").read_text() == "two\n"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (root / "f.txt").read_text() == "one\n"


async def test_a_rollback_that_fails_is_reported(tmp_path: Path) -> None:
    verify = "rm f.txt; mkdir f.txt; exit 1"  # a directory where the file must go back
    keys = f'{EDIT}\nverify = "{verify}"'
    root = project(tmp_path, apply_step(keys))
    result = await arun_workflow("wf", config=config(), cwd=root)
    step = result.steps["apply"]
    assert step.failed
    assert "rollback could not restore everything" in (step.error or "")
    assert "f.txt" in (step.error or "")
    assert step.rolled_back is False
