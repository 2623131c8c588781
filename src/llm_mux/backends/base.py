"""What every backend is: an async ``complete(request) -> response``.

Backends translate their own failures (OS errors, HTTP status codes, CLI wording) into the
error taxonomy of :mod:`llm_mux.errors` in one place each; roles and steps see only that
taxonomy. Retries, limits and timeouts wrap a backend from outside (see ``retry.py``,
``limits.py``), so a backend's ``complete`` makes exactly one attempt.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from llm_mux.values import Value, field


class Usage(Value):
    """Token usage (and cost, when the provider reports it)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cost_usd is not None:
            data["cost_usd"] = self.cost_usd
        return data


class Message(Value):
    """One turn of a conversation: ``role`` is ``user`` or ``assistant``."""

    role: str
    content: str = field(repr=False)


class Request(Value):
    """One prompt for one backend call.

    ``messages`` holds the conversation when there is one (HTTP and local backends send it
    natively); ``prompt`` is always the single text CLI and mock backends take. The
    generation settings override the backend's own when set.
    """

    prompt: str = field(repr=False)
    cwd: Path | None = None
    timeout: float | None = None  # seconds for the whole call; None = the backend's own
    system: str | None = None  # overrides the backend's configured system prompt
    messages: tuple[Message, ...] = field(default=(), repr=False)
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()

    def turns(self) -> tuple[Message, ...]:
        """The conversation's turns: ``messages``, or the prompt as one user message."""
        return self.messages or (Message("user", self.prompt),)


class Delta(Value):
    """A piece of an answer as it arrives; the last one of a stream may carry the usage."""

    text: str = field(default="", repr=False)
    usage: Usage | None = None


class Response(Value):
    """A successful answer."""

    text: str = field(repr=False)
    backend: str
    duration_ms: int
    usage: Usage | None = None
    attempts: int = 1


@runtime_checkable
class Backend(Protocol):
    """A configured LLM reachable somehow. ``name`` is its config name."""

    name: str

    async def complete(self, request: Request) -> Response:
        """Make one attempt; raise a :class:`~llm_mux.errors.BackendError` subclass on failure."""
        ...

    async def check(self) -> str:
        """Check availability without spending tokens; return a detail, raise when unavailable."""
        ...


async def deltas(backend: Backend, request: Request) -> AsyncGenerator[Delta, None]:
    """The answer as it arrives: the backend's own ``stream`` (backends that can stream
    offer one), else the whole answer as one delta. Like ``complete``, one attempt."""
    stream = getattr(backend, "stream", None)
    if stream is not None:
        async for delta in stream(request):
            yield delta
        return
    response = await backend.complete(request)
    yield Delta(response.text, response.usage)
