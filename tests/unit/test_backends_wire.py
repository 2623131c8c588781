"""The plain-http client against servers that bend or break HTTP, on real loopback sockets.

Each server here is a raw asyncio socket server answering with exactly the bytes a test
gives, so framing (sized, chunked, to the close), kept-alive connections the server drops,
hostile heads and silent servers are all exercised through a real backend call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from llm_mux.backends import sse
from llm_mux.errors import BackendTimeout, ParseError, ServerError, Unavailable
from llm_mux.roles import Multiplexer, RoleFailed
from tests.conftest import slack
from tests.fakes.fixtures import make_config

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
ANSWER = {"choices": [{"message": {"content": "fine"}}], "usage": {}}


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """(base URL, connections seen) of a server running ``handler`` per connection."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername")[1])
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", connections
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


def response(body: bytes, *extra: str, status: str = "200 OK") -> bytes:
    headers = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in extra):
        headers.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def backend(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "openai", "command": url, "model": "m", "max_retries": 0, **extra}


async def ask(url: str, defaults: dict[str, Any] | None = None, **extra: Any) -> str:
    async with Multiplexer(make_config({"b": backend(url, **extra)}, defaults=defaults)) as mux:
        return (await mux.call_backend("b", "prompt")).output


async def failure(url: str, defaults: dict[str, Any] | None = None, **extra: Any) -> Exception:
    with pytest.raises(RoleFailed) as caught:
        await ask(url, defaults, **extra)
    return caught.value.failures["b"]


async def test_a_sized_answer_and_the_request_on_the_wire() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(response(json.dumps(ANSWER).encode()))

    async with raw_server(handler) as (url, _):
        assert await ask(url, api_key="k-123") == "fine"
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert "Authorization: Bearer k-123" in lines
    assert any(line.startswith("Host: 127.0.0.1:") for line in lines)
    assert json.loads(body)["messages"][-1] == {"role": "user", "content": "prompt"}


async def test_a_chunked_answer_with_extensions_and_trailers() -> None:
    body = json.dumps(ANSWER).encode()
    half = len(body) // 2
    chunked = (
        f"{half:x};ext=1\r\n".encode()
        + body[:half]
        + b"\r\n"
        + f"{len(body) - half:X}\r\n".encode()
        + body[half:]
        + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(chunked, "Transfer-Encoding: chunked"))

    async with raw_server(handler) as (url, _):
        assert await ask(url) == "fine"


async def test_an_answer_read_to_the_close() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\n" + json.dumps(ANSWER).encode())
        await writer.drain()

    async with raw_server(handler) as (url, _):
        assert await ask(url) == "fine"


async def test_connections_are_kept_alive_and_one_closed_while_idle_is_replaced() -> None:
    served, idle_closed = 0, asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            await read_request(reader)
            served += 1
            writer.write(response(json.dumps(ANSWER).encode()))
            await writer.drain()
            if served == 2:  # then the connection idles out on the server's side
                writer.close()
                await writer.wait_closed()
                idle_closed.set()
                return

    async with (
        raw_server(handler) as (url, connections),
        Multiplexer(make_config({"b": backend(url)})) as mux,
    ):
        for call in range(4):
            if call == 2:
                await idle_closed.wait()
            assert (await mux.call_backend("b", "prompt")).output == "fine"
    assert served == 4
    assert len(connections) == 2  # reused once, then replaced once


async def test_a_request_the_server_drops_is_not_sent_again() -> None:
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        writer.write(response(json.dumps(ANSWER).encode()))
        await writer.drain()
        await read_request(reader)  # the second request on the kept-alive connection
        requests += 1  # ... is dropped unanswered

    async with (
        raw_server(handler) as (url, _),
        Multiplexer(make_config({"b": backend(url)})) as mux,
    ):
        assert (await mux.call_backend("b", "prompt")).output == "fine"
        with pytest.raises(RoleFailed) as caught:
            await mux.call_backend("b", "prompt")
    error = caught.value.failures["b"]
    assert isinstance(error, ServerError) and error.dropped
    assert requests == 2


async def test_a_body_cut_short_is_a_dropped_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(b'{"choices": [', "Content-Length: 500"))
        await writer.drain()

    async with raw_server(handler) as (url, _):
        error = await failure(url)
    assert isinstance(error, ServerError) and error.dropped
    assert "without sending complete message body" in error.message


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"SPDY/9 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 300 + b"\r\n",
    ],
)
async def test_a_broken_head_or_framing_is_a_server_error(head: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head)
        await writer.drain()

    async with raw_server(handler) as (url, _):
        error = await failure(url)
    assert isinstance(error, ServerError), error


async def test_a_server_that_never_answers_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")  # half a head, then silence
        await writer.drain()
        await asyncio.sleep(30)

    async with raw_server(handler) as (url, _):
        started = time.monotonic()
        error = await failure(url, timeout=1)
    assert isinstance(error, BackendTimeout)
    assert time.monotonic() - started < 1 + 2 * slack()


async def test_nothing_listening_is_unavailable() -> None:
    async with raw_server(read_request) as (url, _):
        pass  # closed: the port is free again
    error = await failure(url)
    assert isinstance(error, Unavailable)
    assert "cannot connect" in error.message


async def test_a_stream_line_over_the_output_cap_is_refused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        writer.write(head.encode())
        for _ in range(3):  # 3 MiB of one line, no line break
            writer.write(b"x" * (1024 * 1024))
            await writer.drain()

    async with raw_server(handler) as (url, _):
        error = await failure(url, {"max_output_mb": 1}, stream=True)
    assert isinstance(error, ParseError)
    assert "cap of" in error.message


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


async def test_lines_break_at_crlf_lf_and_cr_across_chunks_only() -> None:
    body = Chunks(b"a\r", b"\nb\rc\n", "d\u2028e\n".encode(), b"\xe2\x80", b"\xa8f\r\ng")
    found = [line async for line in sse.lines(body, 100)]
    assert found == ["a", "b", "c", "d\u2028e", "\u2028f", "g"]


async def test_events_join_data_lines_and_skip_comments() -> None:
    body = Chunks(b': hi\n\nevent: x\ndata: 1\ndata:2\n\ndata: {"a": 1}\n\n', b"data: cut")
    found = [(e.event, e.data) async for e in sse.events(body, 100)]
    assert found == [("x", "1\n2"), ("message", '{"a": 1}')]


@pytest.mark.parametrize("variable", ["http_proxy", "HTTP_PROXY", "ALL_PROXY"])
async def test_a_proxy_from_the_environment_carries_plain_http(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append((await read_request(reader)).split(b"\r\n")[0].decode())
        writer.write(response(json.dumps(ANSWER).encode()))

    async with raw_server(proxy) as (proxy_url, _):
        monkeypatch.setenv(variable, proxy_url.removesuffix("/v1"))
        assert await ask("http://upstream.invalid:8080/v1") == "fine"
    assert lines == ["POST http://upstream.invalid:8080/v1/chat/completions HTTP/1.1"]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8080/v1/chat", ("127.0.0.1", 8080, "/v1/chat")),
        ("http://localhost/api/chat?x=1", ("localhost", 80, "/api/chat?x=1")),
        ("http://[::1]:11434/api/chat", ("::1", 11434, "/api/chat")),
        ("https://api.example.com/v1/chat", None),
        ("http://user:pw@host/v1", None),
        ("http://host/v1/ü", None),
        ("http://host/a b", None),
    ],
)
def test_which_urls_the_plain_client_takes(url: str, address: object) -> None:
    from llm_mux.backends.http import plain_address

    assert plain_address(url) == address


async def test_interim_responses_before_the_answer_are_skipped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
        writer.write(response(json.dumps(ANSWER).encode()))

    async with raw_server(handler) as (url, _):
        assert await ask(url) == "fine"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_answer_is_read(encoding: str) -> None:
    import gzip
    import zlib

    raw = json.dumps(ANSWER).encode()
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(body, f"Content-Encoding: {encoding}"))

    async with raw_server(handler) as (url, _):
        assert await ask(url) == "fine"


async def test_a_compressed_answer_is_capped_as_it_inflates() -> None:
    import zlib

    bomb = zlib.compress(b"0" * (64 * 1024 * 1024), 9)  # 64 MiB in about 64 KiB

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response(bomb, "Content-Encoding: deflate"))

    async with raw_server(handler) as (url, _):
        error = await failure(url, {"max_output_mb": 1})
    assert isinstance(error, ParseError) and "cap of 1 MiB" in error.message
