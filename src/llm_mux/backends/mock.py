"""Mock backends answer from a script in the config, for trying workflows offline.

``response`` (or ``responses``, one per call, cycled), ``echo = true`` (the prompt),
``delay`` (ms), ``size`` (answer padded or cut to that many bytes), and scripted failures:
``fail`` with ``fail_times`` (fail that many calls, then answer) and ``retry_after``.
A ``timeout`` failure really waits for the backend's timeout. Calls are counted per process,
so ``fail_times`` spans the retries of one run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from llm_mux.backends.base import Request, Response, Usage
from llm_mux.config import Backend as BackendConfig
from llm_mux.config import Defaults
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    Failed,
    ParseError,
    RateLimited,
    ServerError,
)

_calls: Counter[str] = Counter()
MALFORMED = '{"choices": [{"message": {"content": "unterminated'


def call_count(name: str) -> int:
    """How many calls the mock backend ``name`` has had in this process."""
    return _calls[name]


def reset_counts() -> None:
    _calls.clear()


class MockBackend:
    """A backend of type ``mock``."""

    def __init__(self, name: str, cfg: BackendConfig, defaults: Defaults) -> None:
        self.name = name
        self.cfg = cfg
        self.defaults = defaults

    def timeout(self, request: Request) -> float:
        return float(request.timeout or self.cfg.timeout or self.defaults.timeout)

    async def complete(self, request: Request) -> Response:
        _calls[self.name] += 1
        number = _calls[self.name]
        started = time.monotonic()
        if self.cfg.delay:
            await asyncio.sleep(self.cfg.delay / 1000)
        if self._fails(number):
            await self._fail(request)
        text = _sized(self._answer(request, number), self.cfg.size)
        usage = Usage(len(request.prompt.split()), len(text.split()))
        return Response(text, self.name, int((time.monotonic() - started) * 1000), usage)

    def _fails(self, number: int) -> bool:
        if self.cfg.fail is None:
            return False
        return self.cfg.fail_times is None or number <= self.cfg.fail_times

    def _answer(self, request: Request, number: int) -> str:
        if self.cfg.responses:
            return self.cfg.responses[(number - 1) % len(self.cfg.responses)]
        if self.cfg.response is not None:
            return self.cfg.response
        if self.cfg.echo:
            return request.prompt
        return f"mock answer from {self.name}"

    async def _fail(self, request: Request) -> None:
        failure = self.cfg.fail
        if failure == "timeout":
            timeout = self.timeout(request)
            await asyncio.sleep(timeout)
            raise BackendTimeout(f"no answer within {timeout:g} s (mock)", backend=self.name)
        raise self._error(failure or "crash")

    def _error(self, failure: str) -> BackendError:
        name = self.name
        if failure == "rate_limit":
            return RateLimited(
                "too many requests (mock)", backend=name, retry_after=self.cfg.retry_after
            )
        if failure == "auth":
            return AuthError("invalid api key (mock)", backend=name)
        if failure == "server_error":
            return ServerError("internal server error (mock)", backend=name)
        if failure == "malformed_json":
            return ParseError(f"expected JSON, got {MALFORMED!r} (mock)", backend=name)
        return Failed("exited with code 1: crashed (mock)", backend=name)

    async def check(self) -> str:
        return "mock backend (answers from the config)"


def _sized(text: str, size: int | None) -> str:
    """``text`` padded with ``.`` or cut (on a character boundary) to ``size`` UTF-8 bytes."""
    if size is None:
        return text
    data = text.encode("utf-8")
    if len(data) >= size:
        return data[:size].decode("utf-8", errors="ignore")
    return text + "." * (size - len(data))
