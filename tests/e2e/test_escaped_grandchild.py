"""A grandchild that left the process group (``setsid … &``) and holds stdout open.

Once the direct child exits, what it wrote is returned after a short grace instead of
waiting for the timeout, and no asyncio traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import CliResult, llm_mux_executable
from tests.fakes.fixtures import read_pid

pytestmark = pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid")

ESCAPE = "setsid sh -c 'echo $$ > escaped; exec sleep 100' &"


@pytest.fixture
def escaped() -> Iterator[Path]:
    """The pid file of the escaped grandchild; it is killed after the test."""
    path = Path.cwd() / "escaped"
    yield path
    if path.exists() and path.read_text().strip():
        try:
            os.kill(int(path.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_workflow(text: str) -> None:
    workflows = Path.cwd() / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "w.toml").write_text(text)


def assert_clean(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert "Event loop is closed" not in stderr


def test_shell_step_returns_what_was_written(cli: Callable[..., CliResult], escaped: Path) -> None:
    write_workflow(
        f"""
[[steps]]
name = "s"
type = "shell"
timeout = "30s"
run = "echo before; {ESCAPE} echo after"
"""
    )
    started = time.monotonic()
    result = cli("--output", "json", "run", "w")
    took = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["steps"]["s"]["output"] == "before\nafter"
    assert took < 10, f"took {took:.1f} s"
    assert_clean(result.stderr)
    assert read_pid(escaped)  # the grandchild really was there


def test_cli_backend_answer_is_returned(
    cli: Callable[..., CliResult], write_config: Callable[..., Path], escaped: Path
) -> None:
    config = write_config(
        f"""
[backends.agent]
command = "/bin/sh"
args = ["-c", "echo the answer; {ESCAPE.replace("$", "$$")}", "sh"]  # $$: a literal $
timeout = 30
max_retries = 0
"""
    )
    started = time.monotonic()
    result = cli("ask", "agent", "hello", "--config", str(config))
    took = time.monotonic() - started
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "the answer"
    assert took < 10, f"took {took:.1f} s"
    assert_clean(result.stderr)
    assert read_pid(escaped)


def test_interrupt_with_an_escaped_grandchild_prints_no_traceback(escaped: Path) -> None:
    write_workflow(
        f"""
[[steps]]
name = "s"
type = "shell"
run = "{ESCAPE} echo $$ > leader; exec sleep 60"
"""
    )
    proc = subprocess.Popen(
        [llm_mux_executable(), "run", "w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_pid(Path.cwd() / "leader")
        read_pid(escaped)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert took < 4.0, f"took {took:.1f} s"  # promise: 2 s
    assert_clean(stderr)
