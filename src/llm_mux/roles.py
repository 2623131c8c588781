"""Roles: a prompt sent to a role's backends in one of three modes (SPEC §1).

* ``first`` — the first enabled backend that is available (command on PATH, HTTP backend
  configured with its variables set); its failure, after retries, is the role's failure.
* ``fallback`` — each enabled backend in order until one succeeds.
* ``parallel`` — every enabled backend at once; success when ``min_success`` succeed.

The :class:`Multiplexer` owns what a run shares: the pooled HTTP client, the limiter and the
built backends. Every backend call goes through the same path: a limiter slot per attempt,
retries per the backend's policy, progress events, and an outcome that never raises.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal

from llm_mux.backends.base import Backend, Request, Response
from llm_mux.backends.build import build_backend, unavailable_reason
from llm_mux.backends.http import HttpClientHolder
from llm_mux.backends.limits import Limiter, build_limiter
from llm_mux.backends.retry import call_with_retries
from llm_mux.config import Config, Role, Team
from llm_mux.errors import (
    BackendError,
    ConfigError,
    Failed,
    LlmMuxError,
    RoleError,
    Unavailable,
    did_you_mean,
)
from llm_mux.events import BackendEvent, BackendState, Listener
from llm_mux.schema import updated
from llm_mux.values import Value, field, replace


class BackendOutcome(Value, frozen=False):
    """What one backend of a role call came back with (after its retries)."""

    backend: str
    response: Response | None
    error: BackendError | None
    duration_ms: int
    attempts: int = 1
    attempt_errors: list[str] | None = None  # each attempt's class, when retried

    @property
    def ok(self) -> bool:
        return self.response is not None and self.error is None

    @property
    def output(self) -> str | None:
        return self.response.text if self.response is not None else None

    @property
    def usage(self) -> dict[str, Any] | None:
        if self.response is None or self.response.usage is None:
            return None
        return self.response.usage.as_dict()

    @property
    def error_text(self) -> str | None:
        """The error without the backend prefix; when it was retried, each attempt's class."""
        if self.error is None:
            return None
        text = self.error.message.removeprefix(f"backend '{self.backend}': ")
        if self.attempts <= 1:
            return text
        classes = f": {', '.join(self.attempt_errors)}" if self.attempt_errors else ""
        return f"{text} (after {self.attempts} attempts{classes})"


class RoleResult(Value, frozen=False):
    """The outcome of a role call: one :class:`BackendOutcome` per backend called, in role
    order; ``skipped`` names backends not called (disabled, unavailable) and why."""

    name: str
    execution: str
    outcomes: list[BackendOutcome]
    min_success: int = 1
    skipped: dict[str, str] = field(factory=dict)
    duration_ms: int = 0

    @property
    def successes(self) -> list[BackendOutcome]:
        return [o for o in self.outcomes if o.ok]

    @property
    def ok(self) -> bool:
        needed = self.min_success if self.execution == "parallel" else 1
        return len(self.successes) >= needed

    @property
    def outputs(self) -> list[str]:
        return [o.response.text for o in self.successes if o.response is not None]

    @property
    def output(self) -> str:
        """The answer; for a parallel call the answers joined by a blank line, role order."""
        outputs = self.outputs
        if self.execution == "parallel":
            return "\n\n".join(outputs)
        return outputs[0] if outputs else ""

    @property
    def backends(self) -> list[str]:
        return [o.backend for o in self.successes]

    @property
    def backend(self) -> str | None:
        return self.successes[0].backend if self.successes else None

    @property
    def usage(self) -> dict[str, Any]:
        """Token usage (and cost) summed over the backends that reported it."""
        totals: dict[str, Any] = {}
        for outcome in self.outcomes:
            for key, value in (outcome.usage or {}).items():
                if value is not None:
                    totals[key] = totals.get(key, 0) + value
        return totals

    @property
    def errors(self) -> dict[str, str]:
        return {o.backend: o.error_text or "" for o in self.outcomes if o.error is not None}

    def failure_lines(self, order: list[str]) -> list[str]:
        """One line per backend that failed or was skipped, in ``order``."""
        errors = self.errors
        lines = []
        for name in order:
            if name in errors:
                lines.append(f"  - {name}: {errors[name]}")
            elif name in self.skipped:
                lines.append(f"  - {name}: skipped: {self.skipped[name]}")
        return lines


class RoleFailed(RoleError):
    """A role call failed; ``result`` holds every backend's outcome, ``failures`` the errors."""

    def __init__(self, message: str, result: RoleResult, order: list[str]) -> None:
        self.result = result
        LlmMuxError.__init__(self, "\n".join([message, *result.failure_lines(order)]))
        self.failures = {o.backend: o.error for o in result.outcomes if o.error is not None}


class Multiplexer:
    """Sends prompts to roles and backends for one run; use as ``async with``."""

    def __init__(
        self,
        config: Config,
        *,
        team: Team | None = None,
        cwd: Path | None = None,
        listener: Listener | None = None,
        limiter: Limiter | None = None,
    ) -> None:
        self.config = config
        self.team = team
        self.cwd = cwd
        self._listener = listener
        self._client = HttpClientHolder()
        self._limiter = limiter if limiter is not None else build_limiter(config)
        self._backends: dict[str, Backend] = {}

    async def __aenter__(self) -> Multiplexer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled HTTP client and the limiter (a shared one holds connections)."""
        try:
            await self._limiter.aclose()
        finally:
            await self._client.aclose()

    def resolve_role(self, name: str) -> Role:
        """The role called ``name`` with the active team's override applied."""
        role = self.config.roles.get(name)
        if role is None:
            known = ", ".join(self.config.roles) or "none configured"
            hint = did_you_mean(name, self.config.roles)
            raise ConfigError(f"unknown role '{name}'{hint}; known roles: {known}")
        override = self.team.roles.get(name) if self.team is not None else None
        if override is None:
            return role
        update: dict[str, Any] = {"backends": list(override.backends)}
        if override.execution is not None:
            update["execution"] = override.execution
        if override.min_success is not None:
            update["min_success"] = override.min_success
        return updated(role, **update)

    def slot(self, backend: str) -> AbstractAsyncContextManager[Any]:
        """A limiter slot for one request to ``backend`` (waits while limits are reached)."""
        return self._limiter.slot(backend)

    def backend(self, name: str) -> Backend:
        """The built backend ``name``, built once per run."""
        if name not in self._backends:
            self._backends[name] = build_backend(name, self.config, client=self._client)
        return self._backends[name]

    async def call_role(
        self,
        role: str,
        prompt: str,
        *,
        parallel: bool = False,
        min_success: int | None = None,
        listener: Listener | None = None,
        system: str | None = None,
        request: Request | None = None,
    ) -> RoleResult:
        """Send ``prompt`` to ``role``; raise :class:`RoleFailed` when the role fails.
        ``request``, when given, is the whole request (a conversation) instead."""
        spec = self.resolve_role(role)
        execution = "parallel" if parallel else spec.execution
        needed = min_success if min_success is not None else spec.min_success
        call = _RoleCall(self, "role", role, execution, needed, prompt, system, listener, request)
        return await call.run(list(spec.backends))

    async def call_backend(
        self,
        backend: str,
        prompt: str,
        *,
        listener: Listener | None = None,
        system: str | None = None,
        request: Request | None = None,
    ) -> RoleResult:
        """Send ``prompt`` to one backend, as a role of one; raise RoleFailed on failure."""
        call = _RoleCall(self, "backend", backend, "first", 1, prompt, system, listener, request)
        return await call.run([backend])

    def request(self, prompt: str, system: str | None, template: Request | None) -> Request:
        """The request one backend gets: ``template`` (a conversation) or the bare prompt."""
        if template is not None:
            return replace(template, cwd=self.cwd)
        return Request(prompt, cwd=self.cwd, system=system)

    async def call_one(
        self,
        name: str,
        prompt: str,
        system: str | None,
        notify: Listener,
        template: Request | None = None,
    ) -> BackendOutcome:
        """One backend, with limiter and retries; failures become the outcome's error."""
        started = time.monotonic()

        def emit(state: BackendState, detail: str = "") -> None:
            if notify is not _nobody:  # no event to build when no one listens
                notify(BackendEvent(name, state, _ms_since(started), detail))

        def on_retry(attempt: int, wait: float, error: BackendError) -> None:
            emit(
                "retrying", f"attempt {attempt} failed ({error.error_class}); next in {wait:.1f} s"
            )

        try:
            backend = self.backend(name)
            prepare = getattr(backend, "prepare", None)
            if prepare is not None:
                prepare()  # before the limiter: a paced request goes out when admitted
            request = self.request(prompt, system, template)

            async def attempt() -> Response:
                emit("waiting")
                async with self._limiter.slot(name) as lease:
                    emit("running")
                    response = await backend.complete(request)
                    tokens = response.usage.total_tokens if response.usage else None
                    if tokens:
                        lease.charge(tokens)  # spent even when the answer is refused below
                    return _non_empty(response)

            response = await call_with_retries(
                attempt, self.config.backend(name), on_retry=on_retry
            )
        except (BackendError, ConfigError) as exc:
            error = _as_backend_error(exc, name)
            outcome = BackendOutcome(
                name, None, error, _ms_since(started), _attempts(exc), _attempt_errors(exc)
            )
            emit("failed", outcome.error_text or "")
            return outcome
        emit("done")
        return BackendOutcome(name, response, None, _ms_since(started), response.attempts)

    def notifier(self, listener: Listener | None) -> Listener:
        listeners = [f for f in (self._listener, listener) if f is not None]
        if not listeners:
            return _nobody

        def notify(event: BackendEvent) -> None:
            for each in listeners:
                each(event)

        return notify


class _RoleCall(Value, frozen=False):
    """One call of a role: the mode's loop over its backends, then the verdict."""

    mux: Multiplexer
    kind: Literal["role", "backend"]
    name: str
    execution: str
    min_success: int
    prompt: str
    system: str | None
    listener: Listener | None
    request: Request | None = None

    async def run(self, names: list[str]) -> RoleResult:
        for name in names:
            self.mux.config.backend(name)  # unknown backend: ConfigError with did-you-mean
        started = time.monotonic()
        notify = self.mux.notifier(self.listener)
        skipped = {n: "disabled (enabled = false)" for n in names if not self._enabled(n)}
        enabled = [n for n in names if n not in skipped]
        modes = {"first": self._first, "fallback": self._fallback, "parallel": self._parallel}
        outcomes = await modes[self.execution](enabled, skipped, notify)
        result = RoleResult(
            self.name, self.execution, outcomes, self.min_success, skipped, _ms_since(started)
        )
        if not result.ok:
            raise RoleFailed(self._failure_message(result, enabled), result, names)
        return result

    def _enabled(self, name: str) -> bool:
        return self.mux.config.backend(name).enabled

    async def _call(self, name: str, notify: Listener) -> BackendOutcome:
        return await self.mux.call_one(name, self.prompt, self.system, notify, self.request)

    async def _first(
        self, names: list[str], skipped: dict[str, str], notify: Listener
    ) -> list[BackendOutcome]:
        config = self.mux.config
        for name in names:
            reason = unavailable_reason(name, config.backend(name), config.defaults)
            if reason is None:
                return [await self._call(name, notify)]
            skipped[name] = reason
        return []

    async def _fallback(
        self, names: list[str], skipped: dict[str, str], notify: Listener
    ) -> list[BackendOutcome]:
        outcomes = []
        for name in names:
            outcome = await self._call(name, notify)
            outcomes.append(outcome)
            if outcome.ok:
                break
        return outcomes

    async def _parallel(
        self, names: list[str], skipped: dict[str, str], notify: Listener
    ) -> list[BackendOutcome]:
        """Every backend at once; once ``min_success`` is out of reach, the rest are
        cancelled (their process groups killed) instead of awaited."""
        started = time.monotonic()
        tasks = {asyncio.ensure_future(self._call(name, notify)): name for name in names}
        pending, succeeded = set(tasks), 0
        try:
            while pending and succeeded + len(pending) >= self.min_success:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                succeeded += sum(1 for task in done if task.result().ok)
        finally:
            await _cancel(pending)
        outcomes = {tasks[t]: t.result() for t in tasks if t not in pending}
        for task in pending:
            outcomes[tasks[task]] = self._cancelled(tasks[task], started, notify)
        return [outcomes[name] for name in names]

    def _cancelled(self, name: str, started: float, notify: Listener) -> BackendOutcome:
        detail = f"cancelled: min_success = {self.min_success} could no longer be reached"
        elapsed = _ms_since(started)
        notify(BackendEvent(name, "failed", elapsed, detail))
        return BackendOutcome(name, None, Failed(detail, backend=name), elapsed)

    def _failure_message(self, result: RoleResult, enabled: list[str]) -> str:
        what = f"{self.kind} '{self.name}' failed"
        mode = f" (execution = {self.execution})" if self.kind == "role" else ""
        if not result.outcomes:
            return f"{what}: no {'available' if enabled else 'enabled'} backend{mode}"
        if self.execution == "parallel":
            succeeded = len(result.successes)
            return (
                f"{what}: {succeeded} of {len(result.outcomes)} backends succeeded, "
                f"{self.min_success} needed{mode}"
            )
        if self.execution == "fallback":
            return f"{what}: every backend failed{mode}"
        return what + mode


async def _cancel(tasks: set[asyncio.Task[BackendOutcome]]) -> None:
    """Cancel ``tasks`` and wait until each has stopped (its child processes killed)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


def _nobody(event: BackendEvent) -> None:
    """The listener of a call that no one listens to."""


def _non_empty(response: Response) -> Response:
    """An answer with no visible text is a failure, whatever the backend type, so a
    ``fallback`` role moves on and a parallel role does not count it."""
    if response.text.strip():
        return response
    detail = "empty answer" if not response.text else "empty answer (only whitespace)"
    raise Failed(detail, backend=response.backend)


def _as_backend_error(exc: LlmMuxError, backend: str) -> BackendError:
    """A config problem of one backend (e.g. a missing ``${VAR}``) as its call's failure."""
    if isinstance(exc, BackendError):
        return exc
    return Unavailable(exc.message, backend=backend, not_found=True)


def _attempts(exc: BackendError | ConfigError) -> int:
    return exc.attempts if isinstance(exc, BackendError) else 1


def _attempt_errors(exc: BackendError | ConfigError) -> list[str] | None:
    found = exc.attempt_errors if isinstance(exc, BackendError) else []
    return list(found) or None


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
