"""uvicorn's HTTP protocol, sending the writes of one event-loop step together.

uvicorn writes an answer's head and each body chunk with a ``transport.write`` of its own,
and each is a ``send`` system call leaving as its own TCP segment (the listener sets
TCP_NODELAY), which wakes the client once per piece. Here the writes a connection makes
before its task next waits are joined and sent once, at the end of that step of the event
loop: a whole answer is one ``send``, and stream events that are ready at once leave
together, while an event that is alone still leaves as soon as its task waits for the
next one, so no token is held back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

try:  # httptools parses requests in C: the serve extra installs it
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - uvicorn installed without the serve extra
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]


class CoalescingTransport(asyncio.Transport):
    """A transport whose writes wait for the end of the current loop step, then leave as
    one; everything else is the wrapped transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is pending now (nothing when the connection is already closing)."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        pending = sum(len(data) for data in self._pending)
        return self._transport.get_write_buffer_size() + pending

    # the rest is the wrapped transport's --------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


class CoalescingHttpProtocol(_Base):
    """uvicorn's HTTP/1.1 protocol (httptools, else h11) over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
