"""Retries of one backend call (SPEC §1): the policy as small pure functions.

``is_retryable`` classifies an error, ``parse_retry_after`` reads what the server asked for,
``backoff_delay`` computes full-jitter exponential backoff, ``retry_wait`` combines them.
tenacity only drives the loop. A server asking for more than 60 s is not waited for: the
call fails at once as :class:`RateLimited` naming the asked delay, so a fallback role can
move on instead of stalling.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from llm_mux.backends.base import Response
from llm_mux.errors import (
    BackendError,
    BackendTimeout,
    RateLimited,
    ServerError,
    Unavailable,
)
from llm_mux.logs import get_logger
from llm_mux.values import replace

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from llm_mux.config import Backend as BackendConfig

MAX_WAIT = 60.0  # s: longest wait between attempts, and longest server request we honour
_MAX_EXPONENT = 32

RetryHook = Callable[[int, float, BackendError], None]
"""Called before each wait with (attempt that failed, wait in s, its error)."""

log = get_logger("backend.retry")


def is_retryable(error: BackendError, cfg: BackendConfig) -> bool:
    """Whether ``error`` deserves another attempt under ``cfg``'s retry settings."""
    if asks_too_long(error):
        return False
    if isinstance(error, RateLimited):
        return cfg.retry_rate_limit
    if isinstance(error, BackendTimeout):
        return cfg.retry_timeout
    if isinstance(error, ServerError):
        return True
    if isinstance(error, Unavailable):
        return not error.not_found  # network errors yes, a missing command never
    return False  # Auth, BadRequest, Parse, Failed


def asks_too_long(error: BackendError) -> bool:
    """The server asked for a wait longer than we are willing to make."""
    return error.retry_after is not None and error.retry_after > MAX_WAIT


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, or ``Retry-After`` as
    seconds or an HTTP date. Unparseable, infinite or negative values give None."""
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    return seconds if seconds is not None else _http_date(value, now)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _http_date(value: str, now: datetime | None) -> float | None:
    try:
        from email.utils import parsedate_to_datetime  # rare: only a date in Retry-After

        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def backoff_delay(
    attempt: int, base_ms: int, *, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, base·2^(attempt-1)], capped at 60 s; in seconds."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    ceiling = min(MAX_WAIT, base_ms / 1000 * 2**exponent)
    return float(rand() * ceiling)


def retry_wait(
    error: BackendError,
    attempt: int,
    base_ms: int,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait before the next attempt: the backoff, or the server's ask when larger.

    A connection the server closed under us (llama.cpp does so after every stream) is
    resent at once the first time: the next connection is fresh, so there is nothing to wait
    for, and the user should not notice.
    """
    if isinstance(error, ServerError) and error.dropped and attempt == 1:
        return 0.0
    delay = backoff_delay(attempt, base_ms, rand=rand)
    asked = error.retry_after
    if asked is not None and asked > delay:
        return min(asked, MAX_WAIT)
    return delay


def give_up_error(error: BackendError) -> RateLimited:
    """The error for a server that asked for more than we wait: RateLimited, not retried."""
    asked = error.retry_after or 0.0
    return RateLimited(
        f"{error.detail} (asked to wait {_duration(asked)}, more than {MAX_WAIT:g} s; not retried)",
        backend=error.backend,
        status=error.status,
        retry_after=asked,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = round(seconds / 60)
    human = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
    return f"{seconds:.0f} s, about {human}"


async def _once(attempt: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await attempt()
    except (RateLimited, ServerError) as error:
        if asks_too_long(error):
            raise give_up_error(error) from error
        raise


async def call_with_retries(
    attempt: Callable[[], Awaitable[Response]],
    cfg: BackendConfig,
    *,
    on_retry: RetryHook | None = None,
) -> Response:
    """Run ``attempt`` until it succeeds, a non-retryable error, or ``max_retries`` retries.

    The last error is re-raised with its ``attempts`` set; the response carries
    ``attempts`` too. The first attempt runs bare: tenacity (about 20 µs to set up) is
    brought in only once an attempt has failed and may be retried.
    """
    try:
        response = await _once(attempt)
    except BackendError as error:
        if cfg.max_retries < 1 or not is_retryable(error, cfg):
            error.attempts = 1
            raise
        return await _retry(attempt, cfg, error, on_retry)
    return response if response.attempts == 1 else replace(response, attempts=1)


async def _retry(
    attempt: Callable[[], Awaitable[Response]],
    cfg: BackendConfig,
    first: BackendError,
    on_retry: RetryHook | None,
) -> Response:
    """The retry loop, entered after the first attempt failed with ``first``."""
    from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, BackendError) and is_retryable(exc, cfg)

    def wait(state: RetryCallState) -> float:
        return retry_wait(_error_of(state), state.attempt_number, cfg.retry_delay)

    def before_sleep(state: RetryCallState) -> None:
        error, delay = _error_of(state), state.upcoming_sleep
        log.debug(
            "backend %s: attempt %d/%d failed (%s); retrying in %.2f s",
            cfg.name,
            state.attempt_number,
            cfg.max_retries + 1,
            error.error_class,
            delay,
        )
        if on_retry is not None:
            on_retry(state.attempt_number, delay, error)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(cfg.max_retries + 1),
        retry=retry_if_exception(retryable),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    attempts = 0
    failures = [attempt_label(first)]
    try:
        async for manager in retrying:
            with manager:
                attempts = manager.retry_state.attempt_number
                if attempts == 1:
                    raise first  # the attempt already made
                try:
                    response = await _once(attempt)
                except BackendError as error:
                    failures.append(attempt_label(error))
                    raise
    except BackendError as error:
        error.attempts = attempts
        error.attempt_errors = failures
        raise
    return replace(response, attempts=attempts)


def attempt_label(error: BackendError) -> str:
    """One attempt's failure in a few words: its class and HTTP status (``ServerError 503``)."""
    return error.error_class + (f" {error.status}" if error.status is not None else "")


def _error_of(state: RetryCallState) -> BackendError:
    exc = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(exc, BackendError)
    return exc
