"""The retry policy as pure functions (table tests) and the loop that tenacity drives."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from llm_mux.backends.base import Response
from llm_mux.backends.retry import (
    MAX_WAIT,
    backoff_delay,
    call_with_retries,
    is_retryable,
    parse_retry_after,
    retry_wait,
)
from llm_mux.config import Backend
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    BadRequest,
    Failed,
    ParseError,
    RateLimited,
    ServerError,
    Unavailable,
)
from llm_mux.schema import validate

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"RETRY-AFTER": " 7 "}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "garbage", "Retry-After": "3"}, 3.0),
        ({"Retry-After": http_date(NOW + timedelta(seconds=30))}, 30.0),
        ({"Retry-After": http_date(NOW - timedelta(days=1))}, 0.0),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "Infinity"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "-10"}, None),
        ({"retry-after-ms": "-5"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "Mon, 99 Foo 2026 25:61:00 GMT"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def cfg(**keys: Any) -> Backend:
    return validate(Backend, {"name": "b", "type": "mock", **keys})


@pytest.mark.parametrize(
    ("error", "keys", "expected"),
    [
        (RateLimited("429"), {}, True),
        (RateLimited("429"), {"retry_rate_limit": False}, False),
        (RateLimited("429", retry_after=60), {}, True),
        (RateLimited("429", retry_after=61), {}, False),
        (BackendTimeout("slow"), {}, False),
        (BackendTimeout("slow"), {"retry_timeout": True}, True),
        (ServerError("500"), {}, True),
        (ServerError("503", retry_after=3600), {}, False),
        (Unavailable("connection refused"), {}, True),
        (Unavailable("command not found", not_found=True), {}, False),
        (AuthError("401"), {}, False),
        (BadRequest("400"), {}, False),
        (ParseError("html"), {}, False),
        (Failed("exit 1"), {}, False),
    ],
)
def test_is_retryable(error: BackendError, keys: dict[str, Any], expected: bool) -> None:
    assert is_retryable(error, cfg(**keys)) is expected


@pytest.mark.parametrize(
    ("attempt", "base_ms", "expected_ceiling"),
    [
        (1, 1000, 1.0),
        (2, 1000, 2.0),
        (3, 1000, 4.0),
        (6, 1000, 32.0),
        (7, 1000, MAX_WAIT),
        (10_000, 1000, MAX_WAIT),
        (1, 0, 0.0),
        (3, 250, 1.0),
    ],
)
def test_backoff_ceiling(attempt: int, base_ms: int, expected_ceiling: float) -> None:
    assert backoff_delay(attempt, base_ms, rand=lambda: 1.0) == expected_ceiling
    assert backoff_delay(attempt, base_ms, rand=lambda: 0.0) == 0.0


def test_backoff_is_full_jitter_within_the_ceiling() -> None:
    delays = [backoff_delay(3, 1000) for _ in range(200)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100  # jittered, not constant


@pytest.mark.parametrize(
    ("asked", "expected"),
    [(None, 2.0), (0.5, 2.0), (5.0, 5.0), (60.0, 60.0)],
)
def test_server_ask_overrides_backoff_when_larger(asked: float | None, expected: float) -> None:
    error = RateLimited("429", retry_after=asked)
    assert retry_wait(error, 2, 1000, rand=lambda: 1.0) == expected


class Script:
    """An attempt function failing with the given errors, then answering."""

    def __init__(self, *errors: BackendError) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.times: list[float] = []

    async def __call__(self) -> Response:
        self.calls += 1
        self.times.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return Response("ok", "b", 1)


async def test_retries_exactly_max_retries_then_raises_the_last_error() -> None:
    script = Script(*[ServerError(f"boom {i}", backend="b") for i in range(10)])
    with pytest.raises(ServerError, match="boom 3") as caught:
        await call_with_retries(script, cfg(max_retries=3, retry_delay=1))
    assert script.calls == 4
    assert caught.value.attempts == 4  # type: ignore[attr-defined]


async def test_success_after_failures_reports_the_attempts() -> None:
    script = Script(ServerError("a"), RateLimited("b"))
    response = await call_with_retries(script, cfg(max_retries=3, retry_delay=1))
    assert (response.text, response.attempts, script.calls) == ("ok", 3, 3)


async def test_zero_retries_means_one_attempt() -> None:
    script = Script(ServerError("a"))
    with pytest.raises(ServerError):
        await call_with_retries(script, cfg(max_retries=0, retry_delay=1))
    assert script.calls == 1


@pytest.mark.parametrize(
    "error", [AuthError("401"), BadRequest("400"), ParseError("html"), Failed("exit 2")]
)
async def test_never_retried(error: BackendError) -> None:
    script = Script(error)
    with pytest.raises(type(error)):
        await call_with_retries(script, cfg(max_retries=5, retry_delay=1))
    assert script.calls == 1


async def test_rate_limits_not_retried_when_disabled() -> None:
    script = Script(RateLimited("429"))
    with pytest.raises(RateLimited):
        await call_with_retries(script, cfg(max_retries=5, retry_delay=1, retry_rate_limit=False))
    assert script.calls == 1


async def test_timeouts_retried_only_when_enabled() -> None:
    script = Script(BackendTimeout("slow"), BackendTimeout("slow"))
    response = await call_with_retries(script, cfg(retry_delay=1, retry_timeout=True))
    assert response.attempts == 3


@pytest.mark.parametrize("error_class", [RateLimited, ServerError])
async def test_asked_over_a_minute_fails_at_once_as_rate_limited(
    error_class: type[BackendError],
) -> None:
    script = Script(error_class("slow down", backend="b", status=429, retry_after=3600))
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        await call_with_retries(script, cfg(max_retries=5, retry_delay=1))
    assert time.monotonic() - started < 1.0
    assert script.calls == 1
    assert "3600 s" in str(caught.value) and "not retried" in str(caught.value)
    assert caught.value.retry_after == 3600


async def test_the_servers_retry_after_is_waited_for() -> None:
    script = Script(RateLimited("429", retry_after=0.4))
    await call_with_retries(script, cfg(retry_delay=1))
    assert script.times[1] - script.times[0] >= 0.38


async def test_retries_are_reported_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[int, str]] = []
    script = Script(ServerError("a"), ServerError("b"))
    with caplog.at_level(logging.DEBUG, logger="llm_mux"):
        await call_with_retries(
            script,
            cfg(retry_delay=1),
            on_retry=lambda n, wait, err: seen.append((n, err.error_class)),
        )
    assert seen == [(1, "ServerError"), (2, "ServerError")]
    assert sum("retrying in" in r.getMessage() for r in caplog.records) == 2
