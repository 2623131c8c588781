"""Concurrency limits: requests beyond a limit wait their turn; none fails."""

from __future__ import annotations

import asyncio
import time

from llm_mux.backends.limits import LocalLimiter
from llm_mux.backends.pacing import GroupLimits
from llm_mux.roles import Multiplexer
from tests.fakes.fixtures import make_config
from tests.fakes.server import FakeLLMServer


async def test_limiter_caps_in_flight_per_backend_and_overall() -> None:
    limiter = LocalLimiter(3, {"a": GroupLimits("a", max_concurrent=1), "b": GroupLimits("b")})
    active = {"a": 0, "all": 0}
    peak = {"a": 0, "all": 0}

    async def use(name: str) -> None:
        async with limiter.slot(name):
            active["all"] += 1
            active["a"] += name == "a"
            peak["all"] = max(peak["all"], active["all"])
            peak["a"] = max(peak["a"], active["a"])
            await asyncio.sleep(0.02)
            active["all"] -= 1
            active["a"] -= name == "a"

    await asyncio.gather(*(use(n) for n in ["a", "b"] * 10))
    assert peak == {"a": 1, "all": 3}


async def test_run_wide_max_concurrent_makes_requests_wait(llm_server: FakeLLMServer) -> None:
    llm_server.delay = 0.2
    backends = {f"h{i}": {"command": llm_server.url + "/v1", "model": f"m{i}"} for i in range(6)}
    roles = {"r": {"backends": list(backends), "execution": "parallel"}}
    config = make_config(backends, roles, defaults={"max_concurrent": 2})
    started = time.monotonic()
    async with Multiplexer(config) as mux:
        result = await mux.call_role("r", "p")
    elapsed = time.monotonic() - started
    assert len(result.outputs) == 6  # all succeeded: waiting is not failing
    assert llm_server.max_in_flight == 2
    assert 0.55 <= elapsed < 1.5  # three waves of 0.2 s


async def test_per_backend_max_concurrent(llm_server: FakeLLMServer) -> None:
    llm_server.delay = 0.1
    table = {"command": llm_server.url + "/v1", "model": "m", "max_concurrent": 1}
    async with Multiplexer(make_config({"h": table})) as mux:
        results = await asyncio.gather(*(mux.call_backend("h", str(i)) for i in range(4)))
    assert [r.output for r in results] == [f"m answers: {i}" for i in range(4)]
    assert llm_server.max_in_flight == 1


async def test_unlimited_by_default(llm_server: FakeLLMServer) -> None:
    llm_server.delay = 0.3
    table = {"command": llm_server.url + "/v1", "model": "m"}
    async with Multiplexer(make_config({"h": table})) as mux:
        await asyncio.gather(*(mux.call_backend("h", str(i)) for i in range(8)))
    assert llm_server.max_in_flight == 8
