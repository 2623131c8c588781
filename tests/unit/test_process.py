"""The one subprocess runner: capture, stdin, caps, timeouts and whole-group termination."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from llm_mux.process import (
    CommandNotFound,
    OutputTooLarge,
    ProcessRequest,
    ProcessTimeout,
    live_group_count,
    run_process,
)
from tests.fakes.fixtures import wait_gone


async def test_captures_stdout_stderr_and_exit_code() -> None:
    outcome = await run_process(ProcessRequest(("sh", "-c", "printf out; printf err >&2; exit 3")))
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (3, b"out", b"err")
    assert not outcome.ok


async def test_invalid_utf8_is_replaced_not_an_error() -> None:
    outcome = await run_process(ProcessRequest(("sh", "-c", r"printf 'a\377b'")))
    assert outcome.stdout == b"a\xffb"
    assert outcome.text == "a\ufffdb"


async def test_large_stdin_and_stdout_round_trip() -> None:
    data = os.urandom(3 * 1024 * 1024)
    outcome = await run_process(ProcessRequest(("cat",), stdin=data))
    assert outcome.stdout == data


async def test_stdin_is_closed_by_default() -> None:
    outcome = await run_process(ProcessRequest(("sh", "-c", "cat; echo done"), timeout=5))
    assert outcome.text == "done\n"


async def test_env_and_cwd(tmp_path: Path) -> None:
    request = ProcessRequest(
        ("sh", "-c", 'printf "%s %s" "$FOO" "$PWD"'),
        cwd=tmp_path,
        env={"FOO": "bar", "PATH": os.environ["PATH"]},
    )
    outcome = await run_process(request)
    assert outcome.text == f"bar {tmp_path}"


async def test_missing_command() -> None:
    with pytest.raises(CommandNotFound, match="no-such-command-xyz"):
        await run_process(ProcessRequest(("no-such-command-xyz",)))


async def test_timeout_kills_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"sleep 60 & echo $! > {pidfile}; wait"
    started = time.monotonic()
    with pytest.raises(ProcessTimeout):
        await run_process(ProcessRequest(("sh", "-c", script), timeout=0.5))
    assert time.monotonic() - started < 3
    assert wait_gone(int(pidfile.read_text()))
    assert live_group_count() == 0


async def test_term_ignoring_child_is_killed(tmp_path: Path) -> None:
    script = "trap '' TERM; sleep 60"
    started = time.monotonic()
    with pytest.raises(ProcessTimeout):
        await run_process(ProcessRequest(("sh", "-c", script), timeout=0.3, kill_grace=0.5))
    assert time.monotonic() - started < 3


async def test_cancellation_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = asyncio.ensure_future(
        run_process(ProcessRequest(("sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait")))
    )
    while not pidfile.exists() or not pidfile.read_text().strip():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_gone(int(pidfile.read_text()))


async def test_background_job_holding_pipes_does_not_stall(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    outcome = await run_process(
        ProcessRequest(("sh", "-c", f"sleep 60 & echo $! > {pidfile}; echo done"), timeout=20)
    )
    assert outcome.text == "done\n"
    assert time.monotonic() - started < 5
    assert wait_gone(int(pidfile.read_text()))


async def test_output_cap_stops_the_child() -> None:
    with pytest.raises(OutputTooLarge, match="cap"):
        await run_process(ProcessRequest(("sh", "-c", "yes"), max_output=1024 * 1024, timeout=20))
