"""Role execution modes, team overrides and progress events, over real backends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from llm_mux.backends import mock
from llm_mux.config import Config
from llm_mux.errors import ConfigError, RateLimited, RoleError, ServerError
from llm_mux.events import BackendEvent
from llm_mux.roles import Multiplexer, RoleFailed, RoleResult
from tests.fakes.fixtures import make_config, read_pid, wait_gone
from tests.fakes.server import FakeLLMServer, rate_limited

pytestmark = pytest.mark.usefixtures("fake_path")


@pytest.fixture(autouse=True)
def _fresh_mock_counts() -> None:
    mock.reset_counts()


def mocks(**answers: Any) -> dict[str, dict[str, Any]]:
    """Mock backends: a string is the answer, a dict the backend's keys."""
    return {
        name: {"type": "mock", "response": value}
        if isinstance(value, str)
        else {"type": "mock", **value}
        for name, value in answers.items()
    }


async def call(config: Config, role: str = "r", **kwargs: Any) -> RoleResult:
    async with Multiplexer(config) as mux:
        return await mux.call_role(role, "prompt", **kwargs)


async def fails(config: Config, role: str = "r", **kwargs: Any) -> RoleFailed:
    with pytest.raises(RoleFailed) as caught:
        await call(config, role, **kwargs)
    return caught.value


# -- first -------------------------------------------------------------------------------


async def test_first_uses_the_first_available_backend() -> None:
    backends = {"gone": {"command": "no-such-cli-here"}, **mocks(a="from a", b="from b")}
    config = make_config(backends, {"r": {"backends": ["gone", "a", "b"]}})
    result = await call(config)
    assert (result.output, result.backend, result.backends) == ("from a", "a", ["a"])
    assert [o.backend for o in result.outcomes] == ["a"]
    assert "not found" in result.skipped["gone"]
    assert mock.call_count("b") == 0


async def test_first_skips_http_backends_missing_their_variable() -> None:
    http = {"command": "http://127.0.0.1:9/v1", "model": "m", "api_key": "${UNSET_KEY_VAR}"}
    config = make_config({"h": http, **mocks(a="a")}, {"r": {"backends": ["h", "a"]}})
    result = await call(config)
    assert result.backend == "a"
    assert "UNSET_KEY_VAR" in result.skipped["h"]


async def test_first_failure_is_the_roles_failure() -> None:
    backends = mocks(a={"fail": "server_error", "max_retries": 1, "retry_delay": 1}, b="b")
    config = make_config(backends, {"r": {"backends": ["a", "b"]}})
    error = await fails(config)
    assert isinstance(error, RoleError)
    assert mock.call_count("a") == 2 and mock.call_count("b") == 0
    assert "a: ServerError" in str(error)
    assert "(after 2 attempts: ServerError, ServerError)" in str(error)
    assert isinstance(error.failures["a"], ServerError)


async def test_first_with_nothing_available_lists_the_reasons() -> None:
    backends = {"x": {"command": "no-such-cli-here"}, **mocks(d={"enabled": False})}
    config = make_config(backends, {"r": {"backends": ["x", "d"]}})
    message = str(await fails(config))
    assert "no available backend" in message
    assert "x: skipped: command not found" in message
    assert "d: skipped: disabled" in message


# -- fallback ----------------------------------------------------------------------------


async def test_fallback_moves_on_after_a_rate_limit() -> None:
    backends = mocks(a={"fail": "rate_limit", "max_retries": 0}, b="from b", c="from c")
    config = make_config(backends, {"r": {"backends": ["a", "b", "c"], "execution": "fallback"}})
    result = await call(config)
    assert (result.output, result.backend) == ("from b", "b")
    assert [o.backend for o in result.outcomes] == ["a", "b"]
    assert result.errors["a"].startswith("RateLimited")
    assert mock.call_count("c") == 0


async def test_fallback_moves_on_at_once_when_the_server_asks_too_much(
    llm_server: FakeLLMServer,
) -> None:
    llm_server.script(rate_limited("300"))
    http = {"command": llm_server.url + "/v1", "model": "m", "max_retries": 5}
    config = make_config(
        {"h": http, **mocks(b="from b")}, {"r": {"backends": ["h", "b"], "execution": "fallback"}}
    )
    started = time.monotonic()
    result = await call(config)
    assert result.output == "from b" and time.monotonic() - started < 1.5
    assert "300 s" in result.errors["h"] and llm_server.count() == 1


async def test_fallback_failure_lists_every_backend() -> None:
    backends = mocks(
        a={"fail": "auth"}, b={"fail": "crash"}, c={"fail": "malformed_json"}, d={"enabled": False}
    )
    config = make_config(
        backends, {"r": {"backends": ["a", "d", "b", "c"], "execution": "fallback"}}
    )
    error = await fails(config)
    lines = str(error).splitlines()
    assert "every backend failed" in lines[0]
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["- a", "- d", "- b", "- c"]
    assert "Auth" in lines[1] and "skipped: disabled" in lines[2]
    assert "Failed" in lines[3] and "Parse" in lines[4]


# -- parallel ----------------------------------------------------------------------------


async def test_parallel_backends_really_overlap() -> None:
    backends = mocks(**{f"m{i}": {"delay": 1000, "response": f"r{i}"} for i in range(6)})
    config = make_config(backends, {"r": {"backends": list(backends), "execution": "parallel"}})
    started = time.monotonic()
    result = await call(config)
    assert time.monotonic() - started < 2.0  # one at a time would take 6 s
    assert result.outputs == [f"r{i}" for i in range(6)]


async def test_parallel_cli_processes_overlap() -> None:
    backends = {f"s{i}": {"command": "fake-sleep", "args": ["1"]} for i in range(3)}
    config = make_config(backends, {"r": {"backends": list(backends), "execution": "parallel"}})
    started = time.monotonic()
    result = await call(config)
    assert time.monotonic() - started < 2.0  # one at a time would take 3 s
    assert result.outputs == ["slept 1"] * 3


async def test_parallel_keeps_role_order_not_finishing_order() -> None:
    backends = mocks(
        slow={"delay": 300, "response": "slow"}, mid={"delay": 150, "response": "mid"}, fast="fast"
    )
    config = make_config(
        backends, {"r": {"backends": ["slow", "mid", "fast"], "execution": "parallel"}}
    )
    result = await call(config)
    assert result.outputs == ["slow", "mid", "fast"]
    assert result.output == "slow\n\nmid\n\nfast"
    assert result.backends == ["slow", "mid", "fast"] and result.backend == "slow"


async def test_parallel_min_success() -> None:
    backends = mocks(a="A", b={"fail": "server_error", "max_retries": 0}, c="C")
    role = {"backends": ["a", "b", "c"], "execution": "parallel"}
    result = await call(make_config(backends, {"r": {**role, "min_success": 2}}))
    assert result.ok and result.outputs == ["A", "C"]
    assert list(result.errors) == ["b"]
    error = await fails(make_config(backends, {"r": {**role, "min_success": 3}}))
    assert "2 of 3 backends succeeded, 3 needed" in str(error)
    assert error.result.outputs == ["A", "C"]  # partial results are kept
    overridden = await call(make_config(backends, {"r": {**role, "min_success": 3}}), min_success=1)
    assert overridden.ok


async def test_parallel_flag_forces_parallel_on_a_first_role() -> None:
    config = make_config(mocks(a="A", b="B"), {"r": {"backends": ["a", "b"]}})
    result = await call(config, parallel=True)
    assert (result.execution, result.outputs) == ("parallel", ["A", "B"])


async def test_parallel_skips_disabled_backends() -> None:
    backends = mocks(a="A", off={"enabled": False, "response": "no"})
    config = make_config(backends, {"r": {"backends": ["a", "off"], "execution": "parallel"}})
    result = await call(config)
    assert result.outputs == ["A"] and "off" in result.skipped
    assert mock.call_count("off") == 0


async def test_cancelling_a_parallel_role_stops_every_process(tmp_path: Path) -> None:
    pids = [tmp_path / f"pid{i}" for i in range(3)]
    backends = {f"h{i}": {"command": "fake-hang", "args": [str(p)]} for i, p in enumerate(pids)}
    config = make_config(backends, {"r": {"backends": list(backends), "execution": "parallel"}})
    task = asyncio.ensure_future(call(config))
    found = [await asyncio.to_thread(read_pid, p) for p in pids]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert all(wait_gone(pid) for pid in found)


async def test_usage_is_summed() -> None:
    config = make_config(
        mocks(a="one two", b="three"), {"r": {"backends": ["a", "b"], "execution": "parallel"}}
    )
    result = await call(config)
    assert result.usage == {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}


# -- resolution, teams, single backends --------------------------------------------------


async def test_unknown_role_suggests_the_closest() -> None:
    config = make_config(mocks(a="A"), {"reviewer": {"backends": ["a"]}})
    with pytest.raises(ConfigError, match="did you mean 'reviewer'"):
        await call(config, "reviewr")


TEAMS = {
    "rust": {
        "detect": ["Cargo.toml"],
        "roles": {"r": {"backends": ["b", "c"], "execution": "parallel", "min_success": 2}},
    },
    "py": {"detect": ["pyproject.toml"], "roles": {"r": ["c"]}},
}


async def test_team_override_replaces_backends_and_mode() -> None:
    config = make_config(mocks(a="A", b="B", c="C"), {"r": {"backends": ["a"]}}, teams=TEAMS)
    async with Multiplexer(config, team=config.teams["rust"]) as mux:
        role = mux.resolve_role("r")
        assert (role.backends, role.execution, role.min_success) == (["b", "c"], "parallel", 2)
        assert (await mux.call_role("r", "p")).outputs == ["B", "C"]
    async with Multiplexer(config, team=config.teams["py"]) as mux:
        role = mux.resolve_role("r")
        assert (role.backends, role.execution) == (["c"], "first")
    async with Multiplexer(config) as mux:
        assert (await mux.call_role("r", "p")).output == "A"


async def test_call_backend_and_its_errors() -> None:
    config = make_config(mocks(a={"echo": True}, off={"enabled": False}))
    async with Multiplexer(config) as mux:
        result = await mux.call_backend("a", "say this")
        assert (result.output, result.backend) == ("say this", "a")
        with pytest.raises(RoleFailed, match="backend 'off' failed"):
            await mux.call_backend("off", "x")
        with pytest.raises(ConfigError, match="did you mean 'a'"):
            await mux.call_backend("aa", "x")


async def test_system_prompt_reaches_the_backend(llm_server: FakeLLMServer) -> None:
    config = make_config({"h": {"command": llm_server.url + "/v1", "model": "m", "system": "cfg"}})
    async with Multiplexer(config) as mux:
        await mux.call_backend("h", "p", system="per call")
        await mux.call_backend("h", "p")
    systems = [r.body["messages"][0]["content"] for r in llm_server.requests]
    assert systems == ["per call", "cfg"]


# -- events ------------------------------------------------------------------------------


async def test_events_show_each_backends_progress() -> None:
    backends = mocks(
        ok="fine", flaky={"fail": "rate_limit", "fail_times": 1, "retry_delay": 1, "response": "x"}
    )
    backends["bad"] = {"type": "mock", "fail": "auth"}
    config = make_config(backends, {"r": {"backends": list(backends), "execution": "parallel"}})
    run_wide: list[BackendEvent] = []
    per_call: list[BackendEvent] = []
    async with Multiplexer(config, listener=run_wide.append) as mux:
        await mux.call_role("r", "p", listener=per_call.append)
    assert run_wide == per_call

    def states(name: str) -> list[str]:
        return [e.state for e in per_call if e.backend == name]

    assert states("ok") == ["waiting", "running", "done"]
    assert states("flaky") == ["waiting", "running", "retrying", "waiting", "running", "done"]
    assert states("bad") == ["waiting", "running", "failed"]
    failed = next(e for e in per_call if e.state == "failed")
    assert "Auth" in failed.detail
    retry = next(e for e in per_call if e.state == "retrying")
    assert "RateLimited" in retry.detail


async def test_role_error_keeps_the_backend_errors() -> None:
    config = make_config(
        mocks(a={"fail": "rate_limit", "max_retries": 0}), {"r": {"backends": ["a"]}}
    )
    error = await fails(config)
    assert isinstance(error.failures["a"], RateLimited)
    assert error.exit_code == 1
