"""Roles and backends called for an answer that arrives piece by piece (SPEC §9, Streaming).

The same path as :meth:`~llm_mux.roles.Multiplexer.call_role` — limiter slot, retries,
timeouts — except that an attempt succeeds at its first delta: until then a failure is
retried, and a ``fallback`` role moves to the next backend; after it, a failure ends the
stream (nothing is sent twice). A ``parallel`` role streams every backend that started, each
on its own index, in role order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_mux.backends.base import Delta, Request, Response, deltas
from llm_mux.backends.build import unavailable_reason
from llm_mux.backends.retry import call_with_retries
from llm_mux.errors import BackendError, BackendTimeout, ConfigError, Failed
from llm_mux.roles import (
    BackendOutcome,
    Multiplexer,
    RoleFailed,
    RoleResult,
    _as_backend_error,
    _attempts,
    _nobody,
    _RoleCall,
)

_END = object()


@dataclass
class Opened:
    """A backend that has started answering: its first delta and the rest to come."""

    backend: str
    first: Delta
    rest: AsyncGenerator[Delta, None]
    stack: AsyncExitStack
    deadline: float
    started: float
    lease: Any = None

    async def pieces(self) -> AsyncIterator[Delta]:
        """Every delta, the first included; the backend's timeout bounds the whole answer.
        The answer's token usage is charged to the limiter's lease once it is known."""
        yield self.first
        usage = self.first.usage
        while True:
            try:
                async with asyncio.timeout_at(self.deadline):
                    delta = await anext(self.rest)
            except StopAsyncIteration:
                tokens = usage.total_tokens if usage is not None else None
                if tokens and self.lease is not None:
                    self.lease.charge(tokens)
                return
            except TimeoutError:
                message = "no complete answer within its timeout"
                raise BackendTimeout(message, backend=self.backend) from None
            usage = delta.usage or usage
            yield delta


@dataclass
class RoleStream:
    """A role (or backend) whose backends have started answering, in role order."""

    name: str
    execution: str
    opened: list[Opened]
    failures: list[BackendOutcome] = field(default_factory=list)

    @property
    def backends(self) -> list[str]:
        return [o.backend for o in self.opened]

    async def events(self) -> AsyncIterator[tuple[int, Delta]]:
        """(index, delta) as they arrive; index is the backend's place in ``opened``."""
        if len(self.opened) == 1:
            async for delta in self.opened[0].pieces():
                yield 0, delta
            return
        queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        tasks = [asyncio.ensure_future(_pump(i, o, queue)) for i, o in enumerate(self.opened)]
        try:
            running = len(tasks)
            while running:
                index, item = await queue.get()
                if item is _END:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                elif isinstance(item, Delta):
                    yield index, item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Close every backend's stream and release its limiter slot."""
        for opened in self.opened:
            await opened.stack.aclose()


async def _pump(index: int, opened: Opened, queue: asyncio.Queue[tuple[int, object]]) -> None:
    try:
        async for delta in opened.pieces():
            queue.put_nowait((index, delta))
    except BackendError as exc:
        queue.put_nowait((index, exc))
    queue.put_nowait((index, _END))


async def open_backend(mux: Multiplexer, name: str, request: Request) -> Opened:
    """``name`` answering ``request`` up to its first delta, with limiter and retries."""
    cfg = mux.config.backend(name)
    backend = mux.backend(name)
    prepare = getattr(backend, "prepare", None)
    if prepare is not None:
        prepare()  # before the limiter, as for whole answers
    request = mux.request(request.prompt, request.system, request)
    timeout = float(request.timeout or cfg.timeout or mux.config.defaults.timeout)
    started = time.monotonic()
    found: list[Opened] = []

    async def attempt() -> Response:
        stack = AsyncExitStack()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            lease = await stack.enter_async_context(mux.slot(name))
            rest = deltas(backend, request)
            stack.push_async_callback(rest.aclose)
            async with asyncio.timeout_at(deadline):
                first = await _first_text(rest, name)
        except TimeoutError:
            await stack.aclose()
            raise BackendTimeout(f"no answer within {timeout:g} s", backend=name) from None
        except BaseException:
            await stack.aclose()
            raise
        found.append(Opened(name, first, rest, stack, deadline, started, lease))
        return Response("", name, 0)

    await call_with_retries(attempt, cfg)
    return found[-1]


async def _first_text(rest: AsyncIterator[Delta], backend: str) -> Delta:
    """The deltas up to the first visible text, as one: an answer with none is a failure,
    as for whole answers, so a fallback role moves on before anything is sent."""
    texts: list[str] = []
    usage = None
    async for delta in rest:
        texts.append(delta.text)
        usage = delta.usage or usage
        if delta.text.strip():
            return Delta("".join(texts), usage)
    detail = "empty answer (only whitespace)" if "".join(texts) else "empty answer"
    raise Failed(detail, backend=backend)


async def _try(mux: Multiplexer, name: str, request: Request) -> Opened | BackendOutcome:
    started = time.monotonic()
    try:
        return await open_backend(mux, name, request)
    except (BackendError, ConfigError) as exc:
        error = _as_backend_error(exc, name)
        ms = int((time.monotonic() - started) * 1000)
        return BackendOutcome(name, None, error, ms, _attempts(exc))


async def open_role(
    mux: Multiplexer, name: str, request: Request, *, is_role: bool = True
) -> RoleStream:
    """Start ``name`` (a role, or one backend) answering; RoleFailed when none starts."""
    if is_role:
        spec = mux.resolve_role(name)
        names, execution, needed = list(spec.backends), spec.execution, spec.min_success
    else:
        names, execution, needed = [name], "first", 1
    for backend in names:
        mux.config.backend(backend)
    skipped = {n: "disabled (enabled = false)" for n in names if not mux.config.backend(n).enabled}
    enabled = [n for n in names if n not in skipped]
    if execution == "parallel":
        results = list(await asyncio.gather(*(_try(mux, n, request) for n in enabled)))
    else:
        results = await _in_turn(mux, enabled, request, execution, skipped)
    opened = [r for r in results if isinstance(r, Opened)]
    failures = [r for r in results if isinstance(r, BackendOutcome)]
    if len(opened) < (needed if execution == "parallel" else 1):
        for started in opened:
            await started.stack.aclose()
        raise _failed(mux, name, is_role, execution, needed, results, skipped, names, enabled)
    return RoleStream(name, execution, opened, failures)


async def _in_turn(
    mux: Multiplexer, names: list[str], request: Request, execution: str, skipped: dict[str, str]
) -> list[Opened | BackendOutcome]:
    """``first``: the first available backend; ``fallback``: each until one starts."""
    results: list[Opened | BackendOutcome] = []
    for each in names:
        if execution == "first":
            reason = unavailable_reason(each, mux.config.backend(each), mux.config.defaults)
            if reason is not None:
                skipped[each] = reason
                continue
        result = await _try(mux, each, request)
        results.append(result)
        if isinstance(result, Opened) or execution == "first":
            break
    return results


def _failed(
    mux: Multiplexer,
    name: str,
    is_role: bool,
    execution: str,
    needed: int,
    results: list[Opened | BackendOutcome],
    skipped: dict[str, str],
    names: list[str],
    enabled: list[str],
) -> RoleFailed:
    outcomes = [
        r if isinstance(r, BackendOutcome) else BackendOutcome(r.backend, _ok(r), None, 0)
        for r in results
    ]
    result = RoleResult(name, execution, outcomes, needed, skipped)
    kind: Literal["role", "backend"] = "role" if is_role else "backend"
    call = _RoleCall(mux, kind, name, execution, needed, "", None, _nobody)
    return RoleFailed(call._failure_message(result, enabled), result, names)


def _ok(opened: Opened) -> Response:
    return Response("", opened.backend, 0)
