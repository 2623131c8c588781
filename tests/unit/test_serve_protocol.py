"""The serve transport: the writes of one event-loop step leave as one send, and a write
leaves as soon as its task waits, so nothing is held back. Over a real socket pair."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from llm_mux.serve.protocol import CoalescingTransport


class Silent(asyncio.Protocol):
    """The serving side's protocol: it only writes."""


class Spy:
    """Records each write reaching the real transport, then passes it on."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.real = transport
        self.writes: list[bytes] = []
        original = transport.write

        def write(data: bytes | bytearray | memoryview) -> None:
            self.writes.append(bytes(data))
            original(data)

        transport.write = write  # type: ignore[method-assign]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[CoalescingTransport, Spy, asyncio.StreamReader]]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(Silent, ours)
    reader, writer = await asyncio.open_connection(sock=theirs)
    spy = Spy(transport)  # type: ignore[arg-type]
    coalescing = CoalescingTransport(transport, loop)  # type: ignore[arg-type]
    try:
        yield coalescing, spy, reader
    finally:
        transport.abort()
        writer.close()


async def test_writes_of_one_step_leave_as_one_send(
    pair: tuple[CoalescingTransport, Spy, asyncio.StreamReader],
) -> None:
    transport, spy, reader = pair
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"data: one\n\n")
    transport.writelines([b"data: two\n\n", b"", bytearray(b"data: three\n\n")])
    assert spy.writes == []  # not yet: the step has not ended
    assert transport.get_write_buffer_size() == 19 + 3 * 11 + 2
    expected = b"HTTP/1.1 200 OK\r\n\r\ndata: one\n\ndata: two\n\ndata: three\n\n"
    received = await asyncio.wait_for(reader.readexactly(len(expected)), 10)
    assert received == expected
    assert spy.writes == [expected]


async def test_a_write_leaves_as_soon_as_its_task_waits(
    pair: tuple[CoalescingTransport, Spy, asyncio.StreamReader],
) -> None:
    transport, spy, reader = pair
    transport.write(b"first token ")
    assert await asyncio.wait_for(reader.readexactly(12), 10) == b"first token "
    transport.write(b"second")
    assert await asyncio.wait_for(reader.readexactly(6), 10) == b"second"
    assert spy.writes == [b"first token ", b"second"]


async def test_close_sends_what_is_pending_first(
    pair: tuple[CoalescingTransport, Spy, asyncio.StreamReader],
) -> None:
    transport, _, reader = pair
    transport.write(b"the last ")
    transport.write(b"chunk")
    transport.close()
    assert await asyncio.wait_for(reader.read(), 10) == b"the last chunk"  # then EOF
    assert transport.is_closing()


async def test_abort_drops_what_is_pending(
    pair: tuple[CoalescingTransport, Spy, asyncio.StreamReader],
) -> None:
    transport, spy, reader = pair
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)  # the scheduled flush runs and finds nothing
    assert await asyncio.wait_for(reader.read(), 10) == b""
    assert spy.writes == []


async def test_a_write_after_the_peer_left_is_dropped_quietly(
    pair: tuple[CoalescingTransport, Spy, asyncio.StreamReader],
) -> None:
    transport, spy, _ = pair
    transport.write(b"x")
    transport._transport.close()  # the connection closes under the pending write
    await asyncio.sleep(0)
    assert spy.writes == []
