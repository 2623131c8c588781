"""Mock backends: scripted answers and failures for trying workflows offline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from llm_mux.backends import mock
from llm_mux.backends.base import Request
from llm_mux.backends.build import build_backend
from llm_mux.backends.http import HttpClientHolder
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    Failed,
    ParseError,
    RateLimited,
    ServerError,
)
from llm_mux.roles import Multiplexer
from tests.fakes.fixtures import make_config


@pytest.fixture(autouse=True)
def _fresh_counts() -> None:
    mock.reset_counts()


def backend(**keys: Any) -> Any:
    config = make_config({"m": {"type": "mock", **keys}})
    return build_backend("m", config, client=HttpClientHolder())


async def answers(count: int, prompt: str = "the prompt", **keys: Any) -> list[str]:
    built = backend(**keys)
    return [(await built.complete(Request(prompt))).text for _ in range(count)]


async def test_response_responses_echo_and_default() -> None:
    assert await answers(2, response="fixed") == ["fixed", "fixed"]
    assert await answers(5, responses=["a", "b"]) == ["a", "b", "a", "b", "a"]
    assert await answers(1, echo=True) == ["the prompt"]
    assert await answers(1) == ["mock answer from m"]


async def test_size_pads_or_cuts_to_bytes() -> None:
    [padded] = await answers(1, response="abc", size=10)
    assert padded == "abc......."
    [cut] = await answers(1, response="abcdef", size=4)
    assert cut == "abcd"
    [big] = await answers(1, response="x", size=1_000_000)
    assert len(big.encode()) == 1_000_000


async def test_delay_is_waited() -> None:
    started = time.monotonic()
    await answers(1, delay=300)
    assert 0.29 <= time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        ("rate_limit", RateLimited),
        ("auth", AuthError),
        ("server_error", ServerError),
        ("crash", Failed),
        ("malformed_json", ParseError),
    ],
)
async def test_failures_raise_their_class(failure: str, error_class: type[BackendError]) -> None:
    with pytest.raises(error_class, match="backend 'm'"):
        await backend(fail=failure).complete(Request("p"))


async def test_rate_limit_carries_retry_after() -> None:
    with pytest.raises(RateLimited) as caught:
        await backend(fail="rate_limit", retry_after=2.5).complete(Request("p"))
    assert caught.value.retry_after == 2.5


async def test_timeout_really_waits_for_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(BackendTimeout):
        await backend(fail="timeout", timeout=1).complete(Request("p"))
    assert 0.95 <= time.monotonic() - started < 2
    started = time.monotonic()
    with pytest.raises(BackendTimeout):
        await backend(fail="timeout", timeout=60).complete(Request("p", timeout=0.3))
    assert time.monotonic() - started < 1


async def test_fail_times_then_answer_counts_calls_per_process() -> None:
    built = backend(fail="crash", fail_times=2, response="finally")
    for _ in range(2):
        with pytest.raises(Failed):
            await built.complete(Request("p"))
    assert (await built.complete(Request("p"))).text == "finally"
    assert mock.call_count("m") == 3
    again = backend(fail="crash", fail_times=2, response="finally")  # same name, same count
    assert (await again.complete(Request("p"))).text == "finally"


async def test_fail_times_spans_retries_of_one_call() -> None:
    keys = {"type": "mock", "fail": "server_error", "fail_times": 2, "retry_delay": 1}
    async with Multiplexer(make_config({"m": keys})) as mux:
        result = await mux.call_backend("m", "p")
    assert result.outcomes[0].attempts == 3


async def test_check_is_always_fine() -> None:
    assert "mock" in await backend().check()
