"""A parallel role stops the backends still running once ``min_success`` is out of reach."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llm_mux.backends import mock
from llm_mux.events import BackendEvent
from llm_mux.roles import Multiplexer, RoleFailed
from tests.fakes.fixtures import alive, make_config, read_pid

SLOW_CLI = {"command": "/bin/sh", "args": ["-c", "echo $$$$ > slow.pid; exec sleep 60", "sh"]}
# fails only once the slow CLI has written its pid, so the test never races its start
FAIL_AFTER_SLOW_STARTED = {
    "command": "/bin/sh",
    "args": ["-c", "until [ -s slow.pid ]; do sleep 0.02; done; exit 3", "sh"],
}


@pytest.fixture(autouse=True)
def _fresh_mock_counts() -> None:
    mock.reset_counts()


def parallel(backends: dict[str, dict[str, Any]], min_success: int) -> Any:
    role = {"backends": list(backends), "execution": "parallel", "min_success": min_success}
    return make_config(backends, {"r": role})


async def test_a_slow_mock_is_cancelled_once_min_success_is_out_of_reach() -> None:
    config = parallel(
        {
            "crash": {"type": "mock", "fail": "crash", "delay": 100},
            "slow": {"type": "mock", "delay": 30_000},
            "quick": {"type": "mock", "response": "fine"},
        },
        min_success=3,
    )
    events: list[BackendEvent] = []
    started = time.monotonic()
    with pytest.raises(RoleFailed) as caught:
        async with Multiplexer(config, listener=events.append) as mux:
            await mux.call_role("r", "prompt")
    assert time.monotonic() - started < 10  # the slow mock would take 30 s
    message = caught.value.message
    assert "1 of 3 backends succeeded, 3 needed" in message
    assert "slow: Failed: cancelled: min_success = 3 could no longer be reached" in message
    assert [o.backend for o in caught.value.result.outcomes] == ["crash", "slow", "quick"]
    assert any(e.backend == "slow" and e.state == "failed" for e in events)


async def test_a_cli_sibling_is_killed_once_min_success_is_out_of_reach() -> None:
    config = parallel({"fails": FAIL_AFTER_SLOW_STARTED, "slow": SLOW_CLI}, min_success=2)
    started = time.monotonic()
    with pytest.raises(RoleFailed) as caught:
        async with Multiplexer(config, cwd=Path.cwd()) as mux:
            await mux.call_role("r", "prompt")
    assert time.monotonic() - started < 10  # the slow CLI would take 60 s
    pid = read_pid(Path.cwd() / "slow.pid")
    assert not alive(pid)  # killed before the call returned
    assert "fails: Failed: exited with code 3" in caught.value.message
    assert "slow: Failed: cancelled" in caught.value.message


async def test_a_reachable_min_success_still_waits_for_every_backend() -> None:
    config = parallel(
        {
            "crash": {"type": "mock", "fail": "crash"},
            "late": {"type": "mock", "response": "late", "delay": 300},
            "early": {"type": "mock", "response": "early"},
        },
        min_success=1,
    )
    async with Multiplexer(config) as mux:
        result = await mux.call_role("r", "prompt")
    assert result.outputs == ["late", "early"]
