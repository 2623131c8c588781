"""Signals reach every child group: the child sees the user's signal, stubborn ones are killed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import llm_mux_executable, within
from tests.fakes.fixtures import read_pid, wait_gone

TRAPPING = """
[[steps]]
name = "child"
type = "shell"
run = '''trap 'echo {name} > got; exit 7' {name}; echo $$ > pid; while :; do sleep 0.1; done'''
"""

STUBBORN = """
[[steps]]
name = "child"
type = "shell"
run = "trap '' INT TERM HUP; echo $$ > pid; while :; do sleep 0.1; done"
"""


def start(workdir: Path, text: str) -> subprocess.Popen[str]:
    workflows = workdir / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "w.toml").write_text(text)
    return subprocess.Popen(
        [llm_mux_executable(), "run", "w"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("signum", "name", "code"),
    [(signal.SIGINT, "INT", 130), (signal.SIGTERM, "TERM", 143), (signal.SIGHUP, "HUP", 129)],
)
def test_signal_is_forwarded_to_the_child(signum: int, name: str, code: int) -> None:
    workdir = Path.cwd()
    proc = start(workdir, TRAPPING.format(name=name))
    pid = read_pid(workdir / "pid")
    proc.send_signal(signum)
    sent = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - sent < within(2.0)
    assert proc.returncode == code
    assert (workdir / "got").read_text().strip() == name
    assert wait_gone(pid)


def test_a_child_ignoring_signals_is_killed_within_two_seconds() -> None:
    workdir = Path.cwd()
    proc = start(workdir, STUBBORN)
    pid = read_pid(workdir / "pid")
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=30)
    assert time.monotonic() - sent < within(2.0), stderr
    assert proc.returncode == 130
    assert wait_gone(pid)
