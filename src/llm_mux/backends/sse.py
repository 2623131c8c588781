"""Lines and server-sent events read from a streamed HTTP body, as they arrive.

One reader for both HTTP clients (see :mod:`llm_mux.backends.wire`): a line or an event
longer than ``limit`` characters is refused rather than held in memory, and only ``\\r\\n``,
``\\n`` and ``\\r`` end a line (JSON text may hold U+2028, which ``str.splitlines`` would cut).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol

_BREAK = re.compile(r"\r\n|\r|\n")


class Streamed(Protocol):
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...


class TooLong(ValueError):
    """A line or an event longer than the reader's limit."""


class Event:
    """One server-sent event: its type (``message`` unless named) and its data."""

    __slots__ = ("data", "event")

    def __init__(self, event: str, data: str) -> None:
        self.event, self.data = event, data

    def json(self) -> Any:
        return json.loads(self.data)


async def lines(response: Streamed, limit: int) -> AsyncIterator[str]:
    """The body's lines without their line breaks; the last one even without a break."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for chunk in response.aiter_bytes():
        pending += decoder.decode(chunk)
        *complete, pending = _split(pending)
        for line in complete:
            yield line
        if len(pending) > limit:
            raise TooLong(f"a line longer than {limit} characters")
    pending += decoder.decode(b"", final=True)
    for line in _BREAK.split(pending):
        if line:
            yield line


def _split(text: str) -> list[str]:
    """``text`` cut at line breaks; a trailing ``\\r`` waits, as ``\\n`` may follow it."""
    if text.endswith("\r"):
        *complete, last = _BREAK.split(text[:-1])
        return [*complete, last + "\r"]
    return _BREAK.split(text)


async def events(response: Streamed, limit: int) -> AsyncIterator[Event]:
    """The body's server-sent events; an event is sent by the blank line that ends it."""
    kind, size = "", 0
    data: list[str] = []
    async for line in lines(response, limit):
        if not line:
            if data:
                yield Event(kind or "message", "\n".join(data))
            kind, data, size = "", [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            kind = value
        elif name == "data":
            data.append(value)
            size += len(value)
            if size > limit:
                raise TooLong(f"an event longer than {limit} characters")
