"""Rate limits in one process: GCRA pacing, burst, token budget, rate groups, 429 pauses."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from pathlib import Path

import pytest

from llm_mux.backends.limits import LocalLimiter
from llm_mux.backends.pacing import GroupLimits, Pacer, group_limits
from llm_mux.roles import Multiplexer
from llm_mux.schema import Invalid, validate
from tests.fakes.fixtures import make_config
from tests.fakes.server import FakeLLMServer, rate_limited


def starts(pacer: Pacer, count: int, now: float = 1000.0) -> list[float]:
    """Reserved start times of ``count`` requests all asking at ``now``."""
    return [now + pacer.reserve(now) for _ in range(count)]


@pytest.mark.parametrize(
    ("rpm", "burst", "expected"),
    [
        (600, 1, [0, 100, 200, 300]),  # strictly paced, 100 ms apart
        (600, 3, [0, 0, 0, 100, 200]),  # three at once, then the steady rate
        (60, 2, [0, 0, 1000]),
    ],
)
def test_gcra_schedule(rpm: int, burst: int, expected: list[float]) -> None:
    pacer = Pacer(GroupLimits("g", rpm=rpm, burst=burst))
    assert [s - 1000.0 for s in starts(pacer, len(expected))] == pytest.approx(expected)


def test_idle_time_refills_only_up_to_burst() -> None:
    pacer = Pacer(GroupLimits("g", rpm=600, burst=2))
    starts(pacer, 2, now=0.0)
    later = starts(pacer, 3, now=10_000.0)  # long idle: two at once again, not more
    assert [s - 10_000.0 for s in later] == pytest.approx([0, 0, 100])


def test_in_any_window_no_more_than_rate_plus_burst() -> None:
    pacer = Pacer(GroupLimits("g", rpm=1200, burst=4))
    times = sorted(starts(pacer, 200, now=0.0))
    for first in times:
        inside = sum(1 for t in times if first <= t < first + 1000)
        assert inside <= 20 + 4


def test_pause_delays_every_start() -> None:
    pacer = Pacer(GroupLimits("g"))
    pacer.pause(0.0, 2.5)
    assert pacer.reserve(1000.0) == pytest.approx(1500.0)
    assert pacer.reserve(3000.0) == 0.0


def test_token_budget_waits_once_spent() -> None:
    pacer = Pacer(GroupLimits("g", tpm=600))  # 10 tokens a second
    assert pacer.token_wait(0.0) == 0.0
    pacer.charge(0.0, 600)  # the whole minute's budget
    assert pacer.token_wait(0.0) == 0.0  # spent, not overdrawn: one more may go
    pacer.charge(0.0, 50)
    assert pacer.token_wait(0.0) == pytest.approx(5000.0)  # 50 tokens at 10/s


def test_rate_group_takes_the_smallest_limit_of_its_members() -> None:
    config = make_config(
        {
            "a": {"type": "mock", "rpm": 100, "rate_group": "key1", "burst": 3},
            "b": {"type": "mock", "rpm": 50, "tpm": 9000, "rate_group": "key1"},
            "c": {"type": "mock", "max_concurrent": 2},
        }
    )
    groups = group_limits(config.backends)
    assert groups["a"] is groups["b"]
    assert groups["a"] == GroupLimits("key1", rpm=50, tpm=9000, burst=3)
    assert groups["c"] == GroupLimits("c", max_concurrent=2)


async def test_rpm_paces_requests_in_one_process(llm_server: FakeLLMServer) -> None:
    table = {"command": llm_server.url + "/v1", "model": "m", "rpm": 1200}  # 50 ms apart
    async with Multiplexer(make_config({"h": table})) as mux:
        await mux.call_backend("h", "warm-up")  # the first connection's set-up is not pacing
        started = time.monotonic()
        await asyncio.gather(*(mux.call_backend("h", str(i)) for i in range(10)))
        elapsed = time.monotonic() - started
    arrivals = sorted(s.at for s in llm_server.requests)[1:]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert elapsed >= 0.45 * 0.95  # ten requests 50 ms apart
    assert min(gaps) >= 0.05 * 0.5 and sum(gaps) >= 0.45 * 0.95  # never sent together
    assert elapsed < 0.5 * 2 + 1.0


async def test_backends_of_one_rate_group_share_the_rate(llm_server: FakeLLMServer) -> None:
    url = llm_server.url + "/v1"
    backends = {
        "a": {"command": url, "model": "a", "rpm": 600, "rate_group": "key"},
        "b": {"command": url, "model": "b", "rpm": 600, "rate_group": "key"},
    }
    async with Multiplexer(make_config(backends)) as mux:
        started = time.monotonic()
        calls = [mux.call_backend(n, "p") for n in ["a", "b"] * 3]
        await asyncio.gather(*calls)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.5 * 0.95  # six requests, 100 ms apart, whichever backend
    assert llm_server.count() == 6


async def test_without_limits_nothing_waits(llm_server: FakeLLMServer) -> None:
    table = {"command": llm_server.url + "/v1", "model": "m"}
    async with Multiplexer(make_config({"h": table})) as mux:
        started = time.monotonic()
        await asyncio.gather(*(mux.call_backend("h", str(i)) for i in range(10)))
    assert time.monotonic() - started < 1.0


async def test_a_429_pauses_the_whole_group(llm_server: FakeLLMServer) -> None:
    url = llm_server.url + "/v1"
    backends = {
        "a": {"command": url, "model": "a", "rate_group": "key", "max_retries": 0},
        "b": {"command": url, "model": "b", "rate_group": "key"},
    }
    llm_server.script(rate_limited("1"), model="a")
    async with Multiplexer(make_config(backends)) as mux:
        first = await mux.call_one("a", "p", None, lambda e: None)
        assert first.error is not None and first.error.error_class == "RateLimited"
        started = time.monotonic()
        await mux.call_backend("b", "p")
        waited = time.monotonic() - started
    assert 0.9 <= waited < 3.0


async def test_token_usage_is_charged_and_later_requests_wait(llm_server: FakeLLMServer) -> None:
    # the fake answers "m answers: PROMPT": 3 words of answer + 1 of prompt = 4 tokens
    table = {"command": llm_server.url + "/v1", "model": "m", "tpm": 120}  # 2 tokens/s
    async with Multiplexer(make_config({"h": table})) as mux:
        for _ in range(30):  # 120 tokens: the minute's budget
            await mux.call_backend("h", "p")
        started = time.monotonic()
        await mux.call_backend("h", "p")
        assert time.monotonic() - started < 0.5  # spent but not overdrawn
        started = time.monotonic()
        await mux.call_backend("h", "p")
        waited = time.monotonic() - started
    assert 1.5 <= waited < 5.0  # the 4 tokens overdrawn, at 2 tokens a second


async def test_cancelled_waiter_frees_its_slot() -> None:
    limiter = LocalLimiter(None, {"h": GroupLimits("h", max_concurrent=1)})
    async with limiter.slot("h"):
        waiter = asyncio.ensure_future(limiter.slot("h").__aenter__())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with asyncio.timeout(1):
        async with limiter.slot("h"):
            pass


@pytest.mark.parametrize(
    ("lease", "ms"), [("30s", 30_000.0), ("2m", 120_000.0), (2, 2_000.0), ("500ms", 500.0)]
)
def test_lease_is_a_duration_and_a_plain_number_is_seconds(lease: object, ms: float) -> None:
    from llm_mux.config import Shared

    assert validate(Shared, {"redis_url": "redis://h", "lease": lease}).lease == ms


@pytest.mark.parametrize(
    "table",
    [
        {"redis_url": "redis://h", "lease": "10ms"},
        {"redis_url": "redis://h", "lease": "soon"},
        {"redis_url": "redis://h", "namespace": "a{b}"},
        {"redis_url": "redis://h", "namespace": ""},
        {"redis_url": "redis://h", "timeout_ms": 0},
        {"redis_url": "redis://h:99999/0"},
        {"redis_url": "127.0.0.1:6379"},
    ],
)
def test_bad_shared_values_are_rejected(table: dict[str, object]) -> None:
    from llm_mux.config import Shared

    with pytest.raises(Invalid):
        validate(Shared, table)


@pytest.mark.parametrize(
    "keys", [{"rpm": 0}, {"tpm": -5}, {"burst": 0}, {"rate_group": ""}, {"rpm": "fast"}]
)
def test_bad_limit_values_are_rejected(keys: dict[str, object]) -> None:
    with pytest.raises(Invalid):
        make_config({"m": {"type": "mock", **keys}})


def test_shared_tables_merge_key_by_key_and_the_env_url_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_mux.config import load_config

    user = Path(os.environ["XDG_CONFIG_HOME"]) / "llm-mux" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[shared]\nredis_url = "redis://u:6379/0"\ntimeout_ms = 100\n')
    explicit = tmp_path / "c.toml"
    explicit.write_text('[shared]\nnamespace = "team"\n')
    config = load_config(explicit, cwd=tmp_path)
    assert config.shared is not None
    assert (config.shared.redis_url, config.shared.namespace) == ("redis://u:6379/0", "team")
    assert config.shared.timeout_ms == 100
    monkeypatch.setenv("LLM_MUX_REDIS_URL", "redis://env:6379/1")
    settings = config.shared_settings()
    assert settings is not None and settings.redis_url == "redis://env:6379/1"
    assert settings.namespace == "team"
    bare = tmp_path / "bare.toml"
    bare.write_text("")
    user.unlink()
    only_env = load_config(bare, cwd=tmp_path).shared_settings()
    assert only_env is not None and only_env.namespace == "llm-mux"
