"""Resumable runs through the real CLI, on the SQLite default and on a real PostgreSQL server.

Every shell step appends its name to ``ran.log``, so each test sees exactly which steps ran
again and which were taken from the ledger.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import llm_mux_executable
from tests.e2e.test_store_step import write_workflow

WORKFLOW = """
[args.who]
default = "world"

[[steps]]
name = "first"
type = "shell"
run = "echo first >> ran.log; echo hello {{ args.who }} $$"

[[steps]]
name = "gate"
type = "shell"
run = "echo gate >> ran.log; test -f open && echo opened"
# after "each" too: a failing step cancels the steps still running, and whether an item of
# "each" were still running when "gate" fails would depend on the machine's speed
depends_on = ["first", "each"]

[[steps]]
name = "after"
type = "shell"
run = "echo after >> ran.log; echo after {{ steps.gate.output }}"
depends_on = ["gate"]

[[steps]]
name = "aside"
type = "shell"
run = "echo aside >> ran.log; echo aside"

[[steps]]
name = "each"
type = "shell"
continue_on_error = true  # its failure must not stop "gate" from starting
for_each = "['x', 'y', 'z']"
run = "echo each-{{ item }} >> ran.log; test {{ item }} != y || test -f open-y"
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment selecting the store: the default SQLite file, or PostgreSQL."""
    if request.param == "sqlite":
        return {}
    return {"LLM_MUX_MEMORY_URL": request.getfixturevalue("postgres_url")}


def ran() -> list[str]:
    log = Path("ran.log")
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(lines)


def run_json(cli, *args: str, env: dict[str, str]) -> tuple[int, dict, str]:  # type: ignore[no-untyped-def, type-arg]
    result = cli("run", "wf", "-o", "json", *args, env=env)
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_a_failed_run_resumes_only_what_failed_and_its_dependents(cli, store_env) -> None:  # type: ignore[no-untyped-def]
    write_workflow(Path.cwd(), "wf", WORKFLOW)
    code, doc, _ = run_json(cli, "who=bob", env=store_env)
    assert code == 1 and doc["run_id"]
    assert ran() == ["aside", "each-x", "each-y", "each-z", "first", "gate"]
    first_output = doc["steps"]["first"]["output"]
    Path("open").touch()
    Path("open-y").touch()

    code, again, stderr = run_json(cli, "--resume", "last", env=store_env)
    assert code == 0, stderr
    assert again["run_id"] == doc["run_id"]
    assert ran() == ["after", "each-y", "gate"]
    steps = again["steps"]
    assert steps["first"]["resumed"] is True and steps["first"]["output"] == first_output
    assert "hello bob" in first_output  # the recorded args came back
    assert steps["aside"]["resumed"] is True
    assert "resumed" not in steps["gate"] and steps["after"]["output"] == "after opened"
    items = steps["each"]["items"]
    assert [i.get("resumed", False) for i in items] == [True, False, True]

    code, third, _ = run_json(cli, "--resume", doc["run_id"], env=store_env)
    assert code == 0 and ran() == []  # a run that succeeded runs nothing
    assert all(s["resumed"] is True for s in third["steps"].values())


def test_an_edited_step_reruns_with_its_dependents(cli, store_env) -> None:  # type: ignore[no-untyped-def]
    Path("open").touch()
    Path("open-y").touch()
    write_workflow(Path.cwd(), "wf", WORKFLOW)
    env = {**store_env, "LLM_MUX_RUN_ID": "pipeline-1234"}
    code, doc, _ = run_json(cli, env=env)
    assert code == 0 and doc["run_id"] == "pipeline-1234"
    ran()
    write_workflow(Path.cwd(), "wf", WORKFLOW.replace("echo opened", "echo reopened"))
    code, doc, _ = run_json(cli, "--resume", "pipeline-1234", env=store_env)
    assert code == 0
    assert ran() == ["after", "gate"]
    assert doc["steps"]["after"]["output"] == "after reopened"


def test_resume_refuses_args_and_unknown_runs(cli, store_env) -> None:  # type: ignore[no-untyped-def]
    write_workflow(Path.cwd(), "wf", WORKFLOW)
    assert cli("run", "wf", "--resume", "last", env=store_env).exit_code == 2
    run_json(cli, env=store_env)
    refused = cli("run", "wf", "--resume", "last", "who=x", env=store_env)
    assert refused.exit_code == 2 and "--resume" in refused.stderr
    unknown = cli("run", "wf", "--resume", "no-such-run", env=store_env)
    assert unknown.exit_code == 2 and "no-such-run" in unknown.stderr


def test_two_resumes_at_once_never_both_run(cli, store_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    waiting = """
[[steps]]
name = "wait"
type = "shell"
run = "touch started; while [ ! -f release ]; do sleep 0.05; done; echo done"
"""
    write_workflow(Path.cwd(), "slow", waiting)
    env = {**os.environ, **store_env}
    holder = subprocess.Popen(
        [llm_mux_executable(), "run", "slow", "--run-id", "shared-run", "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not Path("started").exists():
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = cli("run", "slow", "--resume", "shared-run", env=store_env)
        assert second.exit_code == 1
        assert "shared-run" in second.stderr and "in progress" in second.stderr
        also = cli("run", "slow", "--run-id", "shared-run", env=store_env)
        assert also.exit_code == 1 and "in progress" in also.stderr
        Path("release").touch()
        _, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    done = cli("run", "slow", "--resume", "shared-run", "-o", "json", env=store_env)
    assert done.exit_code == 0 and json.loads(done.stdout)["steps"]["wait"]["resumed"] is True


def test_a_ledger_that_cannot_be_written_warns_once_and_the_run_goes_on(
    cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database's directory should be")
    write_workflow(Path.cwd(), "wf", WORKFLOW)
    Path("open").touch()
    Path("open-y").touch()
    env = {"LLM_MUX_MEMORY_URL": f"sqlite:///{blocker}/memory.db"}
    result = cli("run", "wf", "-q", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("run not recorded; --resume unavailable") == 1


def test_resume_with_the_database_down_exits_1(cli) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    write_workflow(Path.cwd(), "wf", WORKFLOW)
    env = {"LLM_MUX_MEMORY_URL": f"postgresql://u:hidden-pw-123@127.0.0.1:{port}/kb"}
    result = cli("run", "wf", "--resume", "last", env=env)
    assert result.exit_code == 1
    assert f"unavailable at 127.0.0.1:{port}/kb" in result.stderr
    assert "hidden-pw-123" not in result.output
    fresh = cli("run", "wf", "-q", env=env)  # a fresh run goes on, unrecorded
    assert "run not recorded" in fresh.stderr and "hidden-pw-123" not in fresh.output


APPLY = """
[[steps]]
name = "fix"
type = "apply"
edits = [{path = "f.txt", old = "old", new = "new"}]

[[steps]]
name = "gate"
type = "shell"
run = "test -f open && cat f.txt"
depends_on = ["fix"]
"""


def test_an_apply_step_counts_as_done_only_while_its_files_are_unchanged(cli) -> None:  # type: ignore[no-untyped-def]
    write_workflow(Path.cwd(), "fixit", APPLY)
    Path("f.txt").write_text("old text\n")
    assert cli("run", "fixit", "-q").exit_code == 1
    assert Path("f.txt").read_text() == "new text\n"
    Path("open").touch()
    kept = json.loads(cli("run", "fixit", "--resume", "last", "-o", "json").stdout)
    assert kept["steps"]["fix"]["resumed"] is True and kept["success"] is True
    Path("f.txt").write_text("old text\n")  # someone undid the edit
    again = json.loads(cli("run", "fixit", "--resume", "last", "-o", "json").stdout)
    assert "resumed" not in again["steps"]["fix"] and again["steps"]["fix"]["applied"] == ["f.txt"]
    assert Path("f.txt").read_text() == "new text\n"
