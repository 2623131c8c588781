"""Ctrl-C and SIGTERM: every step and backend stopped within 2 s, partial results, no orphans."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import within
from tests.fakes.wf_project import (
    alive,
    document,
    interrupt,
    start,
    wait_for_file,
    write_config,
    write_workflow,
)

FAKES = Path(__file__).resolve().parent.parent / "fakes"


def shell_workflow(pids: Path) -> str:
    return f"""
[[steps]]
name = "done-first"
type = "shell"
run = "echo finished"

[[steps]]
name = "hang"
type = "shell"
run = "sleep 30 & echo $! > {pids}; sleep 30"
depends_on = ["done-first"]

[[steps]]
name = "never"
type = "shell"
run = "echo never"
depends_on = ["hang"]
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_shell_steps_and_their_grandchildren(
    tmp_path: Path, signum: int, code: int
) -> None:
    pids = tmp_path / "pids"
    write_workflow(Path.cwd(), "wf", shell_workflow(pids))
    proc = start(["run", "wf"], Path.cwd())
    grandchild = int(wait_for_file(pids))
    elapsed, out, err = interrupt(proc, signum)
    assert proc.returncode == code, err
    assert elapsed < within(2.0)
    assert not alive(grandchild)
    assert "interrupted" in err
    assert "[done-first] done" in err  # what finished is shown
    assert out == "finished\n"


def test_interrupted_json_run_prints_one_document(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    write_workflow(Path.cwd(), "wf", shell_workflow(pids))
    proc = start(["run", "wf", "--output", "json"], Path.cwd())
    grandchild = int(wait_for_file(pids))
    elapsed, out, _err = interrupt(proc)
    assert proc.returncode == 130 and elapsed < within(2.0)
    doc = document(out)
    assert doc["success"] is False and "interrupted" in doc["error"]
    assert doc["steps"]["done-first"]["output"] == "finished"
    assert doc["steps"]["hang"]["status"] == "cancelled"
    assert doc["steps"]["never"]["skipped"] is True
    assert not alive(grandchild)


def test_signal_stops_backend_processes(tmp_path: Path) -> None:
    pids = tmp_path / "backend-pids"
    extra = f'[backends.hang]\ncommand = "{FAKES / "wf_pid.sh"}"\nargs = ["{pids}"]\n'
    config = write_config(tmp_path, extra)
    text = '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "hang"\nprompt = "hi"\n'
    write_workflow(Path.cwd(), "wf", text)
    proc = start(["run", "wf", "--config", str(config)], Path.cwd())
    wait_for_file(pids)
    while len(pids.read_text().split()) < 2:
        pass
    backend, grandchild = (int(p) for p in pids.read_text().split())
    elapsed, _, err = interrupt(proc)
    assert proc.returncode == 130, err
    assert elapsed < within(2.0)
    assert not alive(backend) and not alive(grandchild)
