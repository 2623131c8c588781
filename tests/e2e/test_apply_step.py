"""Apply steps end to end: the real CLI, a scripted CLI model, real git repos and folders."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import within
from tests.fakes.wf_project import (
    alive,
    document,
    interrupt,
    start,
    wait_for_file,
    write_workflow,
)

MODEL = Path(__file__).resolve().parent.parent / "fakes" / "apply_llm.sh"
PROMPT = "Fix the bug in bug.txt"
ORIGINAL = "a bug here\n"
RIGHT = {"path": "bug.txt", "old": "bug", "new": "fixed"}
WRONG = {"path": "bug.txt", "old": "bug", "new": "bag"}
CHECK = "grep -q fixed bug.txt || { echo 'expected fixed in bug.txt' >&2; exit 1; }"


# --- helpers --------------------------------------------------------------------------------


def model_config(tmp_path: Path, answers: list[Any], extra: str = "") -> Path:
    """A config whose role ``coder`` answers ``answers`` in turn (dicts become JSON)."""
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    for number, answer in enumerate(answers, 1):
        text = answer if isinstance(answer, str) else json.dumps(answer)
        (model / f"answer-{number}").write_text(text, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[backends.model]\ncommand = "{MODEL}"\nargs = ["{model}"]\n\n'
        f'[roles.coder]\nbackends = ["model"]\n\n{extra}',
        encoding="utf-8",
    )
    return path


def asked(tmp_path: Path) -> list[str]:
    """The prompts the model received, in order."""
    model = tmp_path / "model"
    count = int((model / "count").read_text()) if (model / "count").exists() else 0
    return [(model / f"prompt-{n}").read_text() for n in range(1, count + 1)]


def fix_workflow(apply_keys: str, tail: str = "") -> str:
    return f"""
[[steps]]
name = "fix"
type = "query"
role = "coder"
prompt = "{PROMPT}"

[[steps]]
name = "apply"
type = "apply"
source = "steps.fix"
depends_on = ["fix"]
{apply_keys}
{tail}"""


def toml(value: str) -> str:
    return json.dumps(value)


def run(cli: Any, config: Path, text: str, *args: str) -> tuple[int, dict[str, Any], str]:
    write_workflow(Path.cwd(), "wf", text)
    result = cli("run", "wf", "-o", "json", "--config", str(config), *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, document(result.stdout), result.stderr


def git(*args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(["git", *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout


def tree(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and directory under ``root`` (outside .git) with its bytes and mode."""
    state: dict[str, tuple[bytes | None, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        state[rel] = (path.read_bytes() if path.is_file() else None, mode)
    return state


def user_project(with_git: bool) -> None:
    """A project with committed files, uncommitted edits and an untracked file."""
    Path("bug.txt").write_text(ORIGINAL)
    app = Path("app.py")
    app.write_bytes(b"def main():\r\n    return 1\r\n\r\n# end\r\n")
    app.chmod(0o755)
    Path("notes.txt").write_text("committed notes\n")
    if with_git:
        git("init", "-q")
        git("add", "-A")
        git("commit", "-qm", "start")
    app.write_bytes(app.read_bytes().replace(b"# end", b"# end, edited by the user"))
    Path("notes.txt").write_text("uncommitted notes\n")
    Path("scratch.txt").write_text("untracked\n")


# --- the happy path and the result fields ---------------------------------------------------


def test_applied_edits_and_result_fields_reach_templates_and_json(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [RIGHT])
    fields = "{{ steps.apply.applied | join(',') }} {{ steps.apply.attempts }}"
    report = f"""
[[steps]]
name = "report"
type = "shell"
run = "echo {fields} {{{{ steps.apply.verify_output }}}}"
depends_on = ["apply"]
"""
    verify = f"verify = {toml('grep -q fixed bug.txt && echo tests-ok')}"
    code, doc, err = run(cli, config, fix_workflow(verify, report))
    assert code == 0, err
    assert Path("bug.txt").read_text() == "a fixed here\n"
    step = doc["steps"]["apply"]
    assert step["applied"] == ["bug.txt"]
    assert step["attempts"] == 1
    assert step["verify_output"] == "tests-ok"
    assert step["rolled_back"] is False
    assert step["output"] == "applied: bug.txt; verify passed"
    assert doc["steps"]["report"]["output"] == "bug.txt 1 tests-ok"


def test_inline_edits_create_a_file_in_a_new_directory(cli: Any, tmp_path: Path) -> None:
    text = """
[[steps]]
name = "write"
type = "apply"
verify = "test -f docs/new.md"
edits = [{ path = "docs/new.md", old = "", new = "# New\\n" }]
"""
    code, doc, err = run(cli, model_config(tmp_path, []), text)
    assert code == 0, err
    assert Path("docs/new.md").read_text() == "# New\n"
    assert doc["steps"]["write"]["applied"] == ["docs/new.md"]


def test_zero_edits_succeed_and_say_so(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [{"edits": []}])
    code, doc, err = run(cli, config, fix_workflow('verify = "exit 1"'))
    assert code == 0, err
    step = doc["steps"]["apply"]
    assert step["output"] == "nothing applied: no edits"
    assert step["applied"] == [] and step["attempts"] == 1
    assert Path("bug.txt").read_text() == ORIGINAL


def test_unparseable_answer_fails_with_the_expected_formats(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, ["I cannot help with that."])
    code, doc, _ = run(cli, config, fix_workflow('verify = "true"'))
    assert code == 1
    error = doc["steps"]["apply"]["error"]
    assert "output of step 'fix'" in error
    assert "expected edits in one of these formats" in error
    assert "got: I cannot help with that." in error
    assert Path("bug.txt").read_text() == ORIGINAL


# --- failure and rollback -------------------------------------------------------------------


@pytest.mark.parametrize("with_git", [True, False], ids=["git-repo", "plain-folder"])
def test_failed_verify_restores_every_byte_and_keeps_user_changes(
    cli: Any, tmp_path: Path, with_git: bool
) -> None:
    user_project(with_git)
    write_workflow(Path.cwd(), "wf", "")  # the workflow file exists before the snapshot
    edits = [
        {"path": "app.py", "old": "    return 1\n", "new": "    return 2\n"},
        {"path": "pkg/sub/new.py", "old": "", "new": "x = 1\n"},
        {"path": "notes.txt", "old": "uncommitted", "new": "llm"},
    ]
    config = model_config(tmp_path, [{"edits": edits}])
    text = fix_workflow(f"verify = {toml('echo FAILED: 1 test >&2; exit 3')}")
    write_workflow(Path.cwd(), "wf", text)
    before = tree(Path.cwd())
    status, diff = (git("status", "--porcelain"), git("diff")) if with_git else ("", "")
    code, doc, _ = run(cli, config, text)
    assert code == 1
    assert tree(Path.cwd()) == before
    if with_git:
        assert git("status", "--porcelain") == status
        assert git("diff") == diff
    step = doc["steps"]["apply"]
    assert step["applied"] == ["app.py", "pkg/sub/new.py", "notes.txt"]
    assert step["rolled_back"] is True
    assert step["verify_output"] == "FAILED: 1 test"
    assert "verify failed (exit code 3)" in step["error"]
    assert "rolled back" in step["error"] and "FAILED: 1 test" in step["error"]


def test_rollback_on_failure_false_keeps_the_edits(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [RIGHT])
    code, doc, _ = run(cli, config, fix_workflow('verify = "exit 1"\nrollback_on_failure = false'))
    assert code == 1
    assert Path("bug.txt").read_text() == "a fixed here\n"
    step = doc["steps"]["apply"]
    assert step["rolled_back"] is False
    assert "kept (rollback_on_failure = false)" in step["error"]


@pytest.mark.parametrize(
    "bad_path",
    ["../outside.txt", "ABSOLUTE", "link/escaped.txt", ".git/hooks/pre-commit"],
)
def test_paths_outside_the_project_are_refused_and_nothing_is_written(
    cli: Any, tmp_path: Path, bad_path: str
) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    Path("link").symlink_to(outside)
    Path(".git/hooks").mkdir(parents=True)
    bad_path = str(tmp_path / "abs.txt") if bad_path == "ABSOLUTE" else bad_path
    answer = {"edits": [RIGHT, {"path": bad_path, "old": "", "new": "pwned\n"}]}
    code, doc, _ = run(cli, model_config(tmp_path, [answer]), fix_workflow('verify = "true"'))
    assert code == 1
    error = doc["steps"]["apply"]["error"]
    assert any(word in error for word in ("refused", "escapes", "outside", "off-limits")), error
    assert Path("bug.txt").read_text() == ORIGINAL
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "abs.txt").exists() and not (tmp_path / "outside.txt").exists()
    assert list(Path(".git/hooks").iterdir()) == []


def test_step_timeout_during_verify_rolls_back(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [RIGHT])
    code, doc, _ = run(cli, config, fix_workflow('verify = "sleep 30"\ntimeout = "1s"'))
    assert code == 1
    assert "timed out" in doc["steps"]["apply"]["error"]
    assert Path("bug.txt").read_text() == ORIGINAL


def test_ctrl_c_during_a_slow_verify_rolls_back(tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    seen, pid = tmp_path / "seen.txt", tmp_path / "verify.pid"
    verify = "echo $$ > {{ args.pid }}; cat bug.txt > {{ args.seen }}; sleep 30"
    write_workflow(Path.cwd(), "wf", fix_workflow(f"verify = {toml(verify)}"))
    config = model_config(tmp_path, [RIGHT])
    args = ["run", "wf", "--config", str(config), f"seen={seen}", f"pid={pid}"]
    proc = start(args, Path.cwd())
    assert wait_for_file(seen) == "a fixed here\n"  # the edit was on disk during verify
    verifier = int(wait_for_file(pid))
    time.sleep(0.3)  # let llm-mux finish spawning the verify (its child already runs)
    elapsed, _, err = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    assert elapsed < within(2.0)
    assert Path("bug.txt").read_text() == ORIGINAL
    assert not alive(verifier)


# --- verify_retries -------------------------------------------------------------------------


def test_a_failed_verify_asks_again_and_the_second_answer_passes(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [WRONG, RIGHT])
    code, doc, err = run(cli, config, fix_workflow(f"verify = {toml(CHECK)}\nverify_retries = 2"))
    assert code == 0, err
    assert Path("bug.txt").read_text() == "a fixed here\n"
    prompts = asked(tmp_path)
    assert len(prompts) == 2
    assert prompts[0] == PROMPT
    assert prompts[1].startswith(PROMPT)
    assert "expected fixed in bug.txt" in prompts[1]  # the verify output
    assert '"new": "bag"' in prompts[1]  # the edits that were tried
    step = doc["steps"]["apply"]
    assert step["attempts"] == 2 and step["applied"] == ["bug.txt"]
    assert step["output"] == "applied: bug.txt; verify passed (after 2 attempts)"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "Tests said: {{ verify_output }} / you sent: {{ edits }}",
            f"{PROMPT}\n\nTests said: expected fixed in bug.txt / you sent: {json.dumps(WRONG)}\n",
        ),
        (
            "{{ original_prompt }} (again: {{ verify_output }})",
            f"{PROMPT} (again: expected fixed in bug.txt)\n",
        ),
    ],
    ids=["appended", "whole-prompt"],
)
def test_verify_retry_prompt_is_rendered_with_the_failure(
    cli: Any, tmp_path: Path, template: str, expected: str
) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [WRONG, RIGHT])
    keys = f"verify = {toml(CHECK)}\nverify_retries = 1\nverify_retry_prompt = {toml(template)}"
    code, _, err = run(cli, config, fix_workflow(keys))
    assert code == 0, err
    assert asked(tmp_path)[1] == expected


def test_retries_run_out_and_the_files_are_restored(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [WRONG])
    code, doc, _ = run(cli, config, fix_workflow(f"verify = {toml(CHECK)}\nverify_retries = 2"))
    assert code == 1
    assert len(asked(tmp_path)) == 3
    assert Path("bug.txt").read_text() == ORIGINAL
    step = doc["steps"]["apply"]
    assert step["attempts"] == 3 and step["rolled_back"] is True
    assert "after 3 attempts" in step["error"]


def test_an_unusable_retry_answer_fails_with_nothing_changed(cli: Any, tmp_path: Path) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [WRONG, {"path": "bug.txt", "old": "nowhere", "new": "x"}])
    code, doc, _ = run(cli, config, fix_workflow(f"verify = {toml(CHECK)}\nverify_retries = 1"))
    assert code == 1
    assert Path("bug.txt").read_text() == ORIGINAL
    assert "attempt 2" in doc["steps"]["apply"]["error"]
    assert "matched 0 times" in doc["steps"]["apply"]["error"]


# --- team verify ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("team_verify", "step_keys", "code", "content"),
    [
        ("grep -q fixed bug.txt && echo team verify ran", "", 0, "a fixed here\n"),
        ("echo team says no; exit 1", "", 1, ORIGINAL),
        ("exit 1", 'verify = ""', 0, "a fixed here\n"),
    ],
    ids=["passes", "fails", "turned-off"],
)
def test_the_team_verify_is_the_default(
    cli: Any, tmp_path: Path, team_verify: str, step_keys: str, code: int, content: str
) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    team = f"[teams.checked]\ndetect = []\nverify = {toml(team_verify)}\n"
    config = model_config(tmp_path, [RIGHT], team)
    got, doc, err = run(cli, config, fix_workflow(step_keys), "--team", "checked")
    assert got == code, err
    assert Path("bug.txt").read_text() == content
    expected = "" if step_keys else {0: "team verify ran", 1: "team says no"}[code]
    assert doc["steps"]["apply"]["verify_output"] == expected


# --- serialization --------------------------------------------------------------------------


def test_parallel_apply_steps_on_one_file_are_serialized(cli: Any, tmp_path: Path) -> None:
    Path("shared.txt").write_text("a = 1\nb = 1\n")
    log = tmp_path / "log"

    def step(name: str, old: str, new: str, verdict: str) -> str:
        verify = f"echo start-{name} >> {log}; sleep 0.3; echo end-{name} >> {log}; {verdict}"
        return f"""
[[steps]]
name = "{name}"
type = "apply"
continue_on_error = true
verify = {toml(verify)}
edits = [{{ path = "shared.txt", old = "{old}", new = "{new}" }}]
"""

    text = step("first", "a = 1", "a = 2", "exit 1") + step("second", "b = 1", "b = 2", "true")
    _, doc, err = run(cli, model_config(tmp_path, []), text)
    assert doc["steps"]["first"]["status"] == "failed", err
    assert doc["steps"]["second"]["status"] == "success", err
    # the failed step's rollback did not undo the other step's edit
    assert Path("shared.txt").read_text() == "a = 1\nb = 2\n"
    lines = log.read_text().split()
    assert len(lines) == 4
    assert all(lines[i].split("-")[1] == lines[i + 1].split("-")[1] for i in (0, 2)), lines


# --- the source step ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fix_keys", "code", "expected"),
    [
        ('if = "false"', 0, "nothing applied: source step 'fix' was skipped"),
        ('continue_on_error = true\nbackend = "broken"', 1, "source step 'fix' failed"),
    ],
    ids=["skipped", "failed"],
)
def test_a_source_that_did_not_answer_applies_nothing(
    cli: Any, tmp_path: Path, fix_keys: str, code: int, expected: str
) -> None:
    Path("bug.txt").write_text(ORIGINAL)
    config = model_config(tmp_path, [RIGHT], '[backends.broken]\ntype = "mock"\nfail = "auth"\n')
    text = fix_workflow('verify = "true"')
    if "backend" in fix_keys:
        text = text.replace('role = "coder"\n', "", 1)
    text = text.replace(f'prompt = "{PROMPT}"', f'prompt = "{PROMPT}"\n{fix_keys}', 1)
    got, doc, err = run(cli, config, text)
    step = doc["steps"]["apply"]
    assert expected in (step["error"] or step["output"]), err
    assert Path("bug.txt").read_text() == ORIGINAL
    assert got == code
    assert step["status"] == ("success" if code == 0 else "failed")
