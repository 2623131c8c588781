"""A signal stops a huge for_each at once: nothing new starts, running items are stopped."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import llm_mux_executable
from tests.fakes.fixtures import wait_gone

ITEMS = 300_000
PARALLEL = 16
WORKFLOW = f"""
[[steps]]
name = "list"
type = "shell"
run = "seq 1 {ITEMS}"

[[steps]]
name = "each"
type = "shell"
depends_on = ["list"]
for_each = "steps.list.output | lines"
max_parallel = {PARALLEL}
run = "echo $$ >> running; exec sleep 60"
"""


def running_pids(path: Path, count: int, within: float = 60.0) -> list[int]:
    """Wait until ``count`` items have written their pid to ``path``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return [int(p) for p in lines]
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} items started within {within} s")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_large_for_each_at_once(signum: int, code: int) -> None:
    workdir = Path.cwd()
    workflows = workdir / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "w.toml").write_text(WORKFLOW)
    proc = subprocess.Popen(
        [llm_mux_executable(), "run", "w"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pids = running_pids(workdir / "running", PARALLEL)
        proc.send_signal(signum)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == code, stderr
    assert took < 4.0, f"exit took {took:.1f} s after the signal"  # promise: 2 s
    assert "Traceback" not in stderr
    assert all(wait_gone(pid) for pid in pids)
    started = (workdir / "running").read_text().split()
    assert len(started) == PARALLEL, "items were started after the signal"
