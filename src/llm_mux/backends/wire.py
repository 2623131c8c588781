"""HTTP/1.1 over asyncio streams, for backends at a plain ``http://`` URL.

Plain http means a local or in-network server: Ollama, llama.cpp, vLLM, another llm-mux.
There the HTTP client is most of a short command's cost: importing httpx2 and httpcore2
takes about half of an `ask`, and each request spends 100-200 µs of CPU in them. This
client does exactly what the HTTP backends need and no more: POST a JSON body; read the
status, the headers and a body that is sized, chunked or ends with the connection; keep
idle connections per backend. ``https``, proxies and doctor's checks stay with httpx2.

Hostile or broken servers get bounded resources: the head of a response is capped, chunk
sizes are checked, and every connect, write and read waits at most the request's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

MAX_HEAD = 64 * 1024  # bytes of status line and headers
MAX_HEADERS = 200
MAX_INTERIM = 10  # 1xx responses skipped before the final one
READ_SIZE = 64 * 1024
_CRLF = b"\r\n"


_Key = tuple[str, str, int]  # (backend, host, port): each backend keeps its own connections


class WireError(Exception):
    """A transport failure, before or during a response."""


class WireConnectError(WireError):
    """The server could not be reached."""


class WireTimeout(WireError):
    """An operation waited longer than the request's timeout; ``kind`` says which."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class WireProtocolError(WireError):
    """The server broke HTTP or closed the connection in the middle of a response."""


class Headers(Mapping[str, str]):
    """Response headers, looked up without regard to case; repeated ones joined by ", "."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        for name, value in pairs:
            key = name.lower()
            self._values[key] = f"{self._values[key]}, {value}" if key in self._values else value

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        """Idle and still open: the server may close a kept-alive connection at any time."""
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class WireResponse:
    """A response whose body is read as it arrives; the connection goes back to its pool
    once the body has been read to its end, and is closed if the reader stops early."""

    def __init__(
        self,
        pool: WirePool,
        key: _Key,
        connection: _Connection,
        head: _Head,
        url: str,
        timeout: float,
    ) -> None:
        self._version, self.status_code, self.headers = head
        self.url = url
        self._pool, self._key, self._connection = pool, key, connection
        self._timeout = timeout
        self._delimited = True  # the body's end is known, so the connection can be reused
        self._body = self._body_reader()
        self._done = False

    def _body_reader(self) -> AsyncIterator[bytes]:
        if self.status_code in (204, 304) or 100 <= self.status_code < 200:
            return _nothing()
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._chunked()
        length = self.headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise WireProtocolError(f"invalid Content-Length {length!r}") from None
            if size < 0:
                raise WireProtocolError(f"invalid Content-Length {length!r}")
            return self._sized(size)
        self._delimited = False
        return self._to_close()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, decompressed when the server compressed them
        although it was asked not to (``Accept-Encoding: identity``)."""
        decoder = _decoder(self.headers.get("content-encoding", ""))
        async for chunk in self._body:
            if decoder is None:
                yield chunk
                continue
            data = chunk
            while data:  # in bounded pieces, so the caller's size cap holds as it inflates
                yield decoder.decompress(data, READ_SIZE)
                data = decoder.unconsumed_tail
        if decoder is not None:
            yield decoder.flush()
        self._finish()

    async def aclose(self) -> None:
        """Give the connection back when the body was read to its end; close it otherwise."""
        if not self._done:
            self._done = True
            self._connection.close()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._keep_alive():
            self._pool.release(self._key, self._connection)
        else:
            self._connection.close()

    def _keep_alive(self) -> bool:
        """Whether the connection can carry another request: HTTP/1.1 (or 1.0 that asks
        for it) without ``Connection: close``, and a body whose end was known."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if "close" in tokens or (self._version == "HTTP/1.0" and "keep-alive" not in tokens):
            return False
        return self._delimited

    async def _read(self, size: int) -> bytes:
        reading = self._connection.reader.read(size)
        return await _bounded(reading, self._timeout, "ReadTimeout")

    async def _line(self) -> bytes:
        reading = self._connection.reader.readuntil(_CRLF)
        cut, long = _CUT + ": incomplete chunked read", "a chunk header is too long"
        return await _bounded(reading, self._timeout, "ReadTimeout", cut=cut, too_long=long)

    async def _sized(self, size: int) -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            chunk = await self._read(min(left, READ_SIZE))
            if not chunk:
                raise WireProtocolError(f"{_CUT}: {size - left} of {size} bytes")
            left -= len(chunk)
            yield chunk

    async def _chunked(self) -> AsyncIterator[bytes]:
        while True:
            line = await self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise WireProtocolError(f"invalid chunk size {line[:40]!r}") from None
            if size < 0:
                raise WireProtocolError(f"invalid chunk size {line[:40]!r}")
            if size == 0:
                while (await self._line()) != _CRLF:  # trailers, then the empty line
                    pass
                return
            async for piece in self._sized(size):
                yield piece
            if await self._line() != _CRLF:
                raise WireProtocolError("a chunk does not end with CRLF")

    async def _to_close(self) -> AsyncIterator[bytes]:
        while chunk := await self._read(READ_SIZE):
            yield chunk
        self._connection.close()


_CUT = "peer closed connection without sending complete message body"


async def _bounded(
    operation: Awaitable[T], timeout: float, kind: str, *, cut: str = _CUT, too_long: str = ""
) -> T:
    """``operation`` within ``timeout`` seconds, its failures as wire errors: ``kind`` names
    a timeout, ``cut`` a connection that ended early, ``too_long`` a line over the limit."""
    try:
        async with asyncio.timeout(timeout):
            return await operation
    except TimeoutError:
        raise WireTimeout(kind) from None
    except asyncio.IncompleteReadError:
        raise WireProtocolError(cut) from None
    except asyncio.LimitOverrunError:
        raise WireProtocolError(too_long) from None
    except OSError as exc:
        raise WireProtocolError(f"connection lost: {exc}") from None


def _decoder(encoding: str) -> Any:
    """A zlib decompressor for a gzip or deflate body; None for an uncompressed one."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    import zlib

    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if name == "deflate":
        return zlib.decompressobj()
    raise WireProtocolError(f"the answer is compressed as {encoding!r}, which was not asked for")


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


class WirePool:
    """Idle keep-alive connections per backend and address."""

    def __init__(self, user_agent: str) -> None:
        self._idle: dict[_Key, list[_Connection]] = {}
        self._user_agent = user_agent

    def release(self, key: _Key, connection: _Connection) -> None:
        self._idle.setdefault(key, []).append(connection)

    def close(self) -> None:
        """Close every idle connection (those in use close when their response ends)."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    async def post(
        self,
        host: str,
        port: int,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        timeout: float,
        url: str,
        owner: str = "",
    ) -> WireResponse:
        """Send ``body`` and read the response's head; the body is left to the caller.

        A request is never sent twice: a connection that fails once the request went out
        may have been processed, so the failure is the caller's to retry or not.
        """
        key = (owner, host, port)
        head = _request_head("POST", host, port, target, headers, len(body), self._user_agent)
        connection = await self._connection(key, timeout)
        return await self._exchange(key, connection, head + body, timeout, url)

    async def _connection(self, key: _Key, timeout: float) -> _Connection:
        """A kept-alive connection that is still open, else a new one. The loop runs once
        first, so a close the server sent while the connection sat idle has been seen."""
        idle = self._idle.get(key, [])
        if idle:
            await asyncio.sleep(0)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return await self._open(key, timeout)

    async def _open(self, key: _Key, timeout: float) -> _Connection:
        _, host, port = key
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=MAX_HEAD)
        except TimeoutError:
            raise WireTimeout("ConnectTimeout") from None
        except OSError as exc:
            raise WireConnectError(exc.strerror or str(exc) or type(exc).__name__) from None
        return _Connection(reader, writer)

    async def _exchange(
        self,
        key: _Key,
        connection: _Connection,
        data: bytes,
        timeout: float,
        url: str,
    ) -> WireResponse:
        try:
            head = await self._send_and_read_head(connection, data, timeout)
            return WireResponse(self, key, connection, head, url, timeout)
        except BaseException:
            connection.close()
            raise

    async def _send_and_read_head(
        self, connection: _Connection, data: bytes, timeout: float
    ) -> _Head:
        async def send() -> None:
            connection.writer.write(data)
            await connection.writer.drain()

        await _bounded(send(), timeout, "WriteTimeout")
        for _ in range(MAX_INTERIM):
            head = _parse_head(await self._read_head(connection, timeout))
            if not 100 <= head[1] < 200 or head[1] == 101:
                return head  # a final answer; interim ones (100 Continue, 103) are skipped
        raise WireProtocolError(f"more than {MAX_INTERIM} interim responses")

    async def _read_head(self, connection: _Connection, timeout: float) -> bytes:
        reading = connection.reader.readuntil(_CRLF + _CRLF)
        cut = "server disconnected without sending a response"
        long = f"response head over {MAX_HEAD} bytes"
        return await _bounded(reading, timeout, "ReadTimeout", cut=cut, too_long=long)


def _request_head(
    method: str,
    host: str,
    port: int,
    target: str,
    headers: Mapping[str, str],
    length: int,
    user_agent: str,
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {_host_header(host, port)}"]
    given = {name.lower() for name in headers}
    defaults = {
        "user-agent": ("User-Agent", user_agent),
        "accept": ("Accept", "*/*"),
        "accept-encoding": ("Accept-Encoding", "identity"),
        "content-type": ("Content-Type", "application/json"),
    }
    lines += [f"{name}: {value}" for key, (name, value) in defaults.items() if key not in given]
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise WireProtocolError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _host_header(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == 80 else f"{shown}:{port}"


_Head = tuple[str, int, Headers]  # HTTP version, status, headers


def _parse_head(head: bytes) -> _Head:
    lines = head[: -len(_CRLF + _CRLF)].split(_CRLF)
    status_line = lines[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise WireProtocolError(f"invalid status line {status_line[:80]!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise WireProtocolError(f"more than {MAX_HEADERS} headers")
    pairs = []
    for raw in lines[1:]:
        name, colon, value = raw.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise WireProtocolError(f"invalid header line {raw[:80]!r}")
        pairs.append((name, value.strip()))
    return parts[0], int(parts[1]), Headers(pairs)
