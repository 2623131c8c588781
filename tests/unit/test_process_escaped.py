"""A process that left the child's group holds its pipes: stopping the group does not wait
for them."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_mux.process import KILL_GRACE, ProcessRequest, ProcessTimeout, run_process
from tests.fakes.fixtures import read_pid

pytestmark = pytest.mark.skipif(shutil.which("setsid") is None, reason="needs setsid")


@pytest.fixture
def escaped(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "escaped"
    yield path
    if path.exists() and path.read_text().strip():
        try:
            os.kill(int(path.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


async def test_a_timeout_stops_the_group_without_waiting_for_held_pipes(escaped: Path) -> None:
    script = f"setsid sh -c 'echo $$ > {escaped}; exec sleep 100' & exec sleep 60"
    started = time.monotonic()
    with pytest.raises(ProcessTimeout):
        await run_process(ProcessRequest(("/bin/sh", "-c", script), timeout=0.5))
    took = time.monotonic() - started
    # the group dies on SIGTERM at once; waiting on the held pipes would take the whole grace
    assert took < 0.5 + 0.75 * KILL_GRACE, f"took {took:.1f} s"
    assert read_pid(escaped)


async def test_an_escaped_writer_does_not_hold_the_answer(escaped: Path) -> None:
    script = f"echo answer; setsid sh -c 'echo $$ > {escaped}; exec sleep 100' &"
    started = time.monotonic()
    outcome = await run_process(ProcessRequest(("/bin/sh", "-c", script), timeout=30))
    assert (outcome.exit_code, outcome.text) == (0, "answer\n")
    assert time.monotonic() - started < 5
