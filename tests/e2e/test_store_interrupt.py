"""Ctrl-C during a large store step: the step is cancelled with nothing stored, or done with
everything stored — never labelled cancelled after committing — and the run exits at once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import llm_mux_executable

FACTS = 200_000
GENERATE = (
    "import json; print(json.dumps({'facts': [{'project': 'p', 'fact': f'fact {i} ' + 'x' * 40,"
    f" 'source': 's'}} for i in range({FACTS})]}}))"
)
WORKFLOW = f"""
output = "finished"

[[steps]]
name = "gen"
type = "shell"
run = "{sys.executable} gen.py; touch generated"

[[steps]]
name = "save"
type = "store"
depends_on = ["gen"]
prompt = "{{{{ steps.gen.output }}}}"
"""


def stored_facts(home: Path) -> int:
    db = home / ".config" / "llm-mux" / "memory" / "default.db"
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE name = 'facts'").fetchall()
        return conn.execute("SELECT count(*) FROM facts").fetchone()[0] if tables else 0
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.01)


def interrupt_store(home: Path, ready: Callable[[Path], bool]) -> None:
    """Run the workflow, SIGINT it once ``ready``, and check what it reports and stored."""
    workdir = Path.cwd()
    (workdir / "gen.py").write_text(GENERATE)
    workflows = workdir / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "w.toml").write_text(WORKFLOW)
    proc = subprocess.Popen(
        [llm_mux_executable(), "run", "w"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: ready(workdir))
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    states = [line.split()[1] for line in stderr.splitlines() if line.startswith("[save] ")]
    truth = (states[-1], stored_facts(home))
    assert truth in (("cancelled", 0), ("done", FACTS)), truth
    assert proc.returncode == 130, stderr
    assert took < 4.0, f"exit took {took:.1f} s after Ctrl-C"  # promise: 2 s
    assert "Traceback" not in stderr


def generated_a_moment_ago(workdir: Path) -> bool:
    marker = workdir / "generated"
    return marker.exists() and time.time() - marker.stat().st_mtime > 0.3


def writing(home: Path) -> Callable[[Path], bool]:
    wal = home / ".config" / "llm-mux" / "memory" / "default.db-wal"
    return lambda _: wal.exists() and wal.stat().st_size > 1024 * 1024


def test_ctrl_c_while_the_store_reads_its_input(isolated_home: Path) -> None:
    interrupt_store(isolated_home, generated_a_moment_ago)


@pytest.mark.parametrize("attempt", range(2))
def test_ctrl_c_while_the_store_writes(isolated_home: Path, attempt: int) -> None:
    interrupt_store(isolated_home, writing(isolated_home))
