"""From a conversation (system text and turns) to one :class:`Request` for any backend.

HTTP and local backends send the turns natively; CLI and mock backends take one prompt: a
single user message with no system text goes verbatim, anything else becomes a transcript
with the system text first and each turn introduced by its role.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_mux.backends.base import Message, Request

_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


def transcript(system: str | None, turns: Sequence[Message]) -> str:
    """The one-prompt form of a conversation."""
    if not system and len(turns) == 1 and turns[0].role == "user":
        return turns[0].content
    parts = [f"System: {system}"] if system else []
    parts += [f"{_LABELS.get(t.role, t.role.title())}: {t.content}" for t in turns]
    return "\n\n".join(parts)


def conversation_request(
    system: str | None,
    turns: Sequence[Message],
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] = (),
) -> Request:
    """A request carrying both the turns and their one-prompt form."""
    return Request(
        transcript(system, turns),
        system=system or None,
        messages=tuple(turns),
        max_tokens=max_tokens,
        temperature=temperature,
        stop=tuple(stop),
    )
