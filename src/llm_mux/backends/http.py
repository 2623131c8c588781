"""What the HTTP backends share: one pooled client per run, one place that turns HTTP
statuses and transport exceptions into our error classes, and the request/answer skeleton.

A backend at a plain ``http://`` URL (a local server, the common case there) is called
through :mod:`llm_mux.backends.wire`; ``https``, proxies and doctor's checks go through
httpx2, imported on first use, so runs that need neither never pay for it. Diagnostics are
metadata only (method, URL without query, status, timing); headers are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from llm_mux.backends import sse, wire
from llm_mux.backends.base import Delta, Request, Response, Usage
from llm_mux.backends.retry import parse_retry_after
from llm_mux.config.expand import expand
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    BadRequest,
    ConfigError,
    ParseError,
    RateLimited,
    ServerError,
    Unavailable,
)
from llm_mux.logs import get_logger
from llm_mux.values import Value

if TYPE_CHECKING:
    import httpx2 as httpx

    from llm_mux.config import Backend as BackendConfig
    from llm_mux.config import Defaults

CHECK_TIMEOUT = 5.0  # s for a doctor check
QUOTE_LIMIT = 500  # characters of a misunderstood body quoted in a ParseError
DETAIL_LIMIT = 300  # characters of an error body shown in a status error
MiB = 1024 * 1024
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")

log = get_logger("backend.http")


class Answer(Protocol):
    """A response whose body is read as it arrives: httpx2's, or :mod:`wire`'s."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def url(self) -> object: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


def _user_agent() -> str:
    from llm_mux._version import __version__

    return f"llm-mux/{__version__}"


class HttpClientHolder:
    """The run's HTTP clients, created on first use and closed at the end: the plain-http
    pool, and one pooled httpx2 ``AsyncClient`` for the rest.

    The client's connections are pooled per backend (see :func:`_pool_per_backend`) unless
    proxies come from the environment, where the client's own proxy routing is kept as it
    is (and plain-http backends go through it too).
    """

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._wire: wire.WirePool | None = None
        self._proxied: bool | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx2 as httpx

            headers = {"User-Agent": _user_agent()}
            transport = None if self.proxied() else _pool_per_backend()
            self._client = httpx.AsyncClient(headers=headers, transport=transport)
        return self._client

    def wire(self) -> wire.WirePool:
        if self._wire is None:
            self._wire = wire.WirePool(_user_agent())
        return self._wire

    def proxied(self) -> bool:
        if self._proxied is None:
            self._proxied = _environment_proxies()
        return self._proxied

    async def aclose(self) -> None:
        if self._wire is not None:
            pool, self._wire = self._wire, None
            pool.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


POOL_SIZE = 100  # connections per backend, all kept alive between requests
SHARD = 8  # requests in flight per pool of a backend before the next pool takes them
POOL = "llm_mux.pool"
"""Request extension naming the connection pool (the backend) a request belongs to."""


_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def _environment_proxies() -> bool:
    """Whether HTTP(S)_PROXY or ALL_PROXY is set, in any case (as ``urllib`` and httpx
    read them): httpx routes those only for its own pool, and the plain-http client not at
    all, so with any of them set every request goes through httpx's own routing."""
    import os

    return any(value and name.lower() in _PROXY_VARIABLES for name, value in os.environ.items())


def _pool_per_backend() -> httpx.AsyncBaseTransport:
    """A transport keeping the connections of each backend apart from the others'.

    httpcore's pool rescans every connection it holds (probing each idle socket) whenever a
    request starts or ends, so one pool shared by a fan-out of K backends costs O(K²) per
    round: 20-30 ms of CPU at K = 64. Each backend therefore gets its own pools, and those
    are kept small: a request goes to the first of its backend's pools with fewer than
    ``SHARD`` requests in flight, so calls one at a time always reuse the first pool's one
    connection, while 64 at once spread over 8 pools, each scan then covering 8 connections
    rather than 64. A backend holds about 100 connections at most (13 pools of 8), like
    httpx's default pool, and keeps every one of them alive (httpx keeps 20): a burst of 64
    requests would otherwise close 44 connections and open them again on the next burst.
    The SSL context (30-60 ms to build: it loads the system's CA certificates) is built on
    the first ``https`` request and shared; a plain-``http`` pool gets a context that
    trusts nothing, which it never uses.
    """
    import ssl

    import httpx2 as httpx

    limits = httpx.Limits(max_connections=SHARD, max_keepalive_connections=SHARD)

    class Shard:
        """One small pool and how many of its requests are in flight."""

        def __init__(self, verify: ssl.SSLContext) -> None:
            self.pool = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
            self.in_flight = 0

    class Released(httpx.AsyncByteStream):
        """A response's body that gives its request's place back once it is closed."""

        def __init__(self, stream: httpx.AsyncByteStream, shard: Shard) -> None:
            self._stream = stream
            self._shard: Shard | None = shard

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._stream:
                yield chunk

        async def aclose(self) -> None:
            try:
                await self._stream.aclose()
            finally:
                if self._shard is not None:
                    self._shard.in_flight -= 1
                    self._shard = None

    class PoolPerBackend(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self._ssl: ssl.SSLContext | None = None
            self._shards: dict[tuple[str, str], list[Shard]] = {}

        def _context(self, scheme: str) -> ssl.SSLContext:
            if scheme != "https":
                return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, trusts no one
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            return self._ssl

        def _shard(self, request: httpx.Request) -> Shard:
            key = (str(request.extensions.get(POOL, "")), request.url.scheme)
            shards = self._shards.setdefault(key, [])
            for shard in shards:
                if shard.in_flight < SHARD:
                    return shard
            if len(shards) * SHARD < POOL_SIZE:
                shards.append(Shard(self._context(request.url.scheme)))
                return shards[-1]
            return min(shards, key=lambda shard: shard.in_flight)  # all full: the least queued

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            shard = self._shard(request)
            shard.in_flight += 1
            try:
                response = await shard.pool.handle_async_request(request)
            except BaseException:
                shard.in_flight -= 1
                raise
            assert isinstance(response.stream, httpx.AsyncByteStream)
            response.stream = Released(response.stream, shard)
            return response

        async def aclose(self) -> None:
            shards, self._shards = list(self._shards.values()), {}
            for shard in (each for group in shards for each in group):
                await shard.pool.aclose()

    return PoolPerBackend()


# -- translating failures ---------------------------------------------------------------


def status_error(
    status: int, *, backend: str, headers: Mapping[str, str], body: str, url: str
) -> BackendError:
    """The one factory from an HTTP error status to our error classes."""
    detail = f"{error_detail(body) or 'no details'} ({safe_url(url)})"
    retry_after = parse_retry_after(headers)
    common: dict[str, Any] = {"backend": backend, "status": status}
    if status in (401, 403):
        return AuthError(detail, **common)
    if status == 429:
        return RateLimited(detail, retry_after=retry_after, **common)
    if status in (408, 409) or status >= 500:
        return ServerError(detail, retry_after=retry_after, **common)
    if 400 <= status < 500:
        from llm_mux.backends.patterns import AUTH  # its patterns compile on first use

        if AUTH.search(body):
            return AuthError(detail, **common)
    return BadRequest(detail, **common)


def transport_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of either HTTP client (httpx2 is not imported for it)."""
    if isinstance(exc, wire.WireError):
        return True
    httpx = sys.modules.get("httpx2")
    return httpx is not None and isinstance(exc, httpx.HTTPError | httpx.InvalidURL)


def translate(exc: Exception, *, backend: str, url: str) -> BackendError:
    """Map a transport exception onto our error classes (keep it as the cause)."""
    where = safe_url(url)
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, wire.WireError):
        return _translate_wire(exc, backend=backend, where=where, reason=reason)
    import httpx2 as httpx

    if isinstance(exc, httpx.TimeoutException):
        return BackendTimeout(f"{type(exc).__name__} talking to {where}", backend=backend)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Unavailable(f"invalid URL {where}: {reason}", backend=backend, not_found=True)
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        return Unavailable(f"cannot connect to {where}: {reason}", backend=backend)
    if isinstance(exc, httpx.DecodingError):
        return ParseError(f"cannot decode the answer from {where}: {reason}", backend=backend)
    error = ServerError(f"connection error with {where}: {reason}", backend=backend)
    error.dropped = isinstance(exc, httpx.RemoteProtocolError)
    return error


def _translate_wire(exc: wire.WireError, *, backend: str, where: str, reason: str) -> BackendError:
    if isinstance(exc, wire.WireTimeout):
        return BackendTimeout(f"{exc.kind} talking to {where}", backend=backend)
    if isinstance(exc, wire.WireConnectError):
        return Unavailable(f"cannot connect to {where}: {reason}", backend=backend)
    error = ServerError(f"connection error with {where}: {reason}", backend=backend)
    error.dropped = True
    return error


def error_detail(body: str) -> str:
    """The message inside a provider's error body, else its text, shortened."""
    data = _loads(body)
    if isinstance(data, dict):
        found = _error_message(data)
        if found:
            return _shorten(found, DETAIL_LIMIT)
    return _shorten(re.sub(r"\s+", " ", body).strip(), DETAIL_LIMIT)


def _error_message(data: dict[str, Any]) -> str | None:
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message") or error.get("type")
    for value in (error, data.get("message"), data.get("detail")):
        if isinstance(value, str) and value:
            return value
    return None


def quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, for quoting in an error."""
    return repr(_shorten(text, limit))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_json(body: str, *, backend: str) -> Any:
    """The JSON document in ``body``; a ParseError quoting it otherwise."""
    try:
        return json.loads(body)
    except ValueError:
        raise ParseError(f"expected JSON, got {quote(body)}", backend=backend) from None


def safe_url(url: str) -> str:
    """``url`` without credentials, query or fragment: safe for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def plain_address(url: str) -> tuple[str, int, str] | None:
    """(host, port, path with query) of a plain-``http://`` URL the wire client can send to
    as written; None for anything else (https, credentials, text that needs escaping)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.username is not None:
        return None
    if not url.isascii() or any(c in url for c in ' \t\r\n"<>\\^`{|}'):
        return None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.hostname, parts.port or 80, path


def join_url(base: str, path: str) -> str:
    """``path`` appended to the path of ``base``, keeping any query string of ``base``."""
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))


def merge(body: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` merged into ``body``; nested tables merge key by key."""
    merged = dict(body)
    for key, value in params.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def request_messages(request: Request, system: str | None) -> list[dict[str, str]]:
    """OpenAI-style messages: an optional system message, then the request's turns."""
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, *({"role": m.role, "content": m.content} for m in request.turns())]


# -- the skeleton of every HTTP backend -------------------------------------------------


class _Target(Value):
    """Where a backend posts: the URL as text (for messages), the headers, and either the
    plain-http address (host, port, path) or what is handed to httpx (the URL parsed once,
    or the text when httpx cannot parse it, so the request reports it)."""

    url: str
    headers: dict[str, str]
    plain: tuple[str, int, str] | None = None
    send_to: httpx.URL | str = ""


class HttpBackend:
    """One attempt: POST a JSON body to ``command + endpoint`` and read the answer.

    Subclasses say where to post, which headers and body to send, and where the answer is.
    """

    kind: ClassVar[str] = ""
    endpoint: ClassVar[str] = ""
    models_endpoint: ClassVar[str] = ""
    url_hint: ClassVar[str] = ""  # what `command` should look like, for a 404 from doctor
    stream_type: ClassVar[str] = "text/event-stream"

    def __init__(
        self, name: str, cfg: BackendConfig, defaults: Defaults, *, client: HttpClientHolder
    ) -> None:
        self.name = name
        self.cfg = cfg
        self.defaults = defaults
        self._client = client
        self._max_bytes = defaults.max_output_mb * MiB
        self._target: _Target | None = None
        self._pool = {POOL: name}

    # hooks ------------------------------------------------------------------------------

    def headers(self, api_key: str | None) -> dict[str, str]:
        """The key as a bearer token (OpenAI and Ollama); APIs with their own header override."""
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def body(self, request: Request) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, data: Any) -> tuple[str, Usage | None]:
        """(text, usage) from the decoded JSON; KeyError/IndexError/TypeError = not understood."""
        raise NotImplementedError

    def iter_stream(self, response: Answer) -> AsyncIterator[Delta]:
        """The deltas of a streamed answer, as they arrive."""
        raise NotImplementedError

    async def read_stream(self, response: Answer) -> tuple[str, Usage | None]:
        """A streamed answer accumulated: (text, usage)."""
        parts: list[str] = []
        usage: Usage | None = None
        async for delta in self._iter_stream(response):
            parts.append(delta.text)
            usage = delta.usage or usage
        return "".join(parts), usage

    # the call ----------------------------------------------------------------------------

    def url(self, endpoint: str) -> str:
        """``command`` (expanded) joined with ``endpoint``; Unavailable if it is no URL."""
        base = expand(self.cfg.command or "", owner=self._owner, field="command", secret=True)
        try:
            url = join_url(base, endpoint)
            safe_url(url)  # parses host and port
        except ValueError as exc:
            message = f"invalid URL in command: {exc}"
            raise Unavailable(message, backend=self.name, not_found=True) from None
        return url

    def api_key(self) -> str | None:
        if not self.cfg.api_key:
            return None
        key = expand(self.cfg.api_key, owner=self._owner, field="api_key", secret=True)
        if not _HEADER_SAFE.fullmatch(key):
            raise ConfigError(
                f"api_key of {self._owner} holds characters an HTTP header cannot carry "
                "(only printable ASCII is allowed)",
                hint="check the variable it comes from for a stray character or newline",
            )
        return key or None

    def system(self, request: Request) -> str | None:
        return request.system if request.system is not None else self.cfg.system

    def timeout(self, request: Request) -> float:
        return float(request.timeout or self.cfg.timeout or self.defaults.timeout)

    def max_tokens(self, request: Request) -> int | None:
        return request.max_tokens if request.max_tokens is not None else self.cfg.max_tokens

    def temperature(self, request: Request) -> float | None:
        return request.temperature if request.temperature is not None else self.cfg.temperature

    def sampling(
        self, request: Request, *, max_tokens: str = "max_tokens", stop: str = "stop"
    ) -> dict[str, Any]:
        """The sampling settings that are set, under this API's names for them."""
        found: dict[str, Any] = {}
        tokens, temperature = self.max_tokens(request), self.temperature(request)
        if tokens is not None:
            found[max_tokens] = tokens
        if temperature is not None:
            found["temperature"] = temperature
        if request.stop:
            found[stop] = list(request.stop)
        return found

    def counted(self, size: int, piece: str) -> int:
        """``size`` grown by a streamed ``piece``; past ``max_output_mb`` the answer is refused."""
        size += len(piece)
        if size > self._max_bytes:
            raise self.too_large()
        return size

    @property
    def _owner(self) -> str:
        return f"backend '{self.name}'"

    def prepare(self) -> None:
        """Resolve the URL (and for httpx2, import it and build its client) ahead of the
        limiter's slot, so a paced request is sent the moment it is admitted (httpx2's
        first request costs ~100 ms)."""
        if self._target is not None:
            return
        if self._resolve().plain is not None:
            return
        self._client.get()
        try:  # httpcore's first connection loads anyio's asyncio backend: 50 ms more
            import anyio

            anyio.Event()
        except (ImportError, RuntimeError):
            pass

    async def complete(self, request: Request) -> Response:
        """Make one attempt; the whole exchange is bounded by the backend's timeout."""
        target = self._target or self._resolve()
        url = target.url
        body, timeout = self.body(request), self.timeout(request)
        started = time.monotonic()
        try:
            with self._translated(url):
                async with asyncio.timeout(timeout):
                    text, usage = await self._exchange(target, body, timeout)
        except TimeoutError:
            message = f"no answer within {timeout:g} s from {safe_url(url)}"
            raise BackendTimeout(message, backend=self.name) from None
        return Response(text, self.name, _ms_since(started), usage)

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        """One attempt yielding the answer as it arrives (with ``stream = true``; otherwise
        the whole answer as one delta). The caller bounds the time it waits."""
        if not self.cfg.stream:
            response = await self.complete(request)
            yield Delta(response.text, response.usage)
            return
        target = self._target or self._resolve()
        with self._translated(target.url):
            async with self._open(target, self.body(request), self.timeout(request)) as resp:
                if not resp.headers.get("content-type", "").startswith(self.stream_type):
                    text, usage = self._understand(await self._read(resp))
                    yield Delta(text, usage)
                    return
                async for delta in self._iter_stream(resp):
                    yield delta

    @contextmanager
    def _translated(self, url: str) -> Iterator[None]:
        """A failure of either HTTP client as one of our error classes (the cause kept)."""
        try:
            yield
        except Exception as exc:
            if transport_error(exc):
                raise translate(exc, backend=self.name, url=url) from exc
            raise

    @asynccontextmanager
    async def _open(
        self, target: _Target, body: dict[str, Any], timeout: float
    ) -> AsyncIterator[Answer]:
        """The streamed response to ``body`` with a 2xx status; an error class otherwise."""
        resp = await self._send(target, body, timeout)
        try:
            await self._check_status(resp, target)
            yield resp
        finally:
            await resp.aclose()

    async def _check_status(self, resp: Answer, target: _Target) -> None:
        """Nothing for a 2xx answer; else the error class its status and body call for."""
        if not 200 <= resp.status_code < 300:
            raw = await self._read(resp)
            raise status_error(
                resp.status_code, backend=self.name, headers=resp.headers, body=raw, url=target.url
            )

    async def _send(self, target: _Target, body: dict[str, Any], timeout: float) -> Answer:
        """POST ``body`` on this backend's pool; the answer's body is left to the caller."""
        if target.plain is not None:
            host, port, path = target.plain
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            pool = self._client.wire()
            return await pool.post(
                host, port, path, target.headers, data.encode(), timeout, target.url, self.name
            )
        client = self._client.get()
        request = client.build_request(
            "POST",
            target.send_to,
            json=body,
            headers=target.headers,
            timeout=timeout,
            extensions=self._pool,
        )
        return await client.send(request, stream=True)

    async def _iter_stream(self, response: Answer) -> AsyncIterator[Delta]:
        """``iter_stream`` with what it cannot understand reported as a ParseError."""
        try:
            async for delta in self.iter_stream(response):
                yield delta
        except sse.TooLong:
            raise self.too_large() from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            message = f"malformed stream from {safe_url(str(response.url))}: {exc}"
            raise ParseError(_shorten(message, QUOTE_LIMIT), backend=self.name) from None

    def _resolve(self) -> _Target:
        """URL and headers, expanded once per run: the environment does not change."""
        url = self.url(self.endpoint)
        headers = self.headers(self.api_key())
        plain = None if self._client.proxied() else plain_address(url)
        if plain is not None:
            self._target = _Target(url, headers, plain)
            return self._target
        import httpx2 as httpx

        send_to: httpx.URL | str = url
        try:
            send_to = httpx.URL(url)
        except httpx.InvalidURL:
            pass
        self._target = _Target(url, headers, send_to=send_to)
        return self._target

    async def _exchange(
        self, target: _Target, body: dict[str, Any], timeout: float
    ) -> tuple[str, Usage | None]:
        started = time.monotonic()
        resp = await self._send(target, body, timeout)
        try:
            if log.isEnabledFor(logging.DEBUG):
                where, ms = safe_url(target.url), _ms_since(started)
                log.debug("POST %s -> %d (%d ms)", where, resp.status_code, ms)
            await self._check_status(resp, target)
            content_type = resp.headers.get("content-type", "")
            if self.cfg.stream and content_type.startswith(self.stream_type):
                return await self.read_stream(resp)
            return self._understand(await self._read(resp))
        finally:
            await resp.aclose()

    async def _read(self, response: Answer) -> str:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise self.too_large()
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def too_large(self) -> ParseError:
        """An answer past ``max_output_mb`` cannot be read, so it is not understood (SPEC §1:
        ``Failed`` is a CLI's non-zero exit); like any Parse error it is not retried."""
        cap = self.defaults.max_output_mb
        return ParseError(
            f"answer exceeded the cap of {cap} MiB (defaults.max_output_mb)", backend=self.name
        )

    def _understand(self, raw: str) -> tuple[str, Usage | None]:
        data = parse_json(raw, backend=self.name)
        try:
            return self.answer(data)
        except (KeyError, IndexError, TypeError, AttributeError):
            message = f"no answer found in the response {quote(raw)}"
            raise ParseError(message, backend=self.name) from None

    async def check(self) -> str:
        """Reachable when ``GET models_endpoint`` answers within 5 s with a non-5xx status;
        a 404 there means ``command`` is not this API's base URL."""
        import httpx2 as httpx

        url, headers = self.url(self.models_endpoint), self.headers(self.api_key())
        started = time.monotonic()
        client = self._client.get()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                resp = await client.get(
                    url, headers=headers, timeout=CHECK_TIMEOUT, extensions=self._pool
                )
        except TimeoutError:
            raise BackendTimeout(
                f"no answer within {CHECK_TIMEOUT:g} s from {safe_url(url)}", backend=self.name
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise translate(exc, backend=self.name, url=url) from exc
        status = resp.status_code
        if status in (404, 410):
            message = f"GET {safe_url(url)} answered HTTP {status}: no {self.kind} API there"
            raise Unavailable(message, backend=self.name, status=status, hint=self.url_hint)
        if status in (401, 403) or status >= 500:
            raise status_error(
                status, backend=self.name, headers=resp.headers, body=resp.text, url=url
            )
        return f"HTTP {status} from GET {safe_url(url)} in {_ms_since(started)} ms"


def stream_error(payload: Any, *, backend: str) -> BackendError:
    """An error reported inside a stream (the status was already 200)."""
    text = json.dumps(payload) if not isinstance(payload, str) else payload
    detail = error_detail(text) or "the stream reported an error"
    kind = str(payload.get("type", "")) if isinstance(payload, dict) else ""
    if "rate_limit" in kind:
        return RateLimited(detail, backend=backend)
    if "auth" in kind or "permission" in kind:
        return AuthError(detail, backend=backend)
    return ServerError(detail, backend=backend)


def truncated(response: Answer, marker: str, *, backend: str) -> ServerError:
    """A stream that ended without its end marker: the connection was cut, so what came is
    not the whole answer. A ServerError, retried like any dropped connection."""
    where = safe_url(str(response.url))
    message = f"the stream from {where} ended before {marker}: the answer was cut short"
    return ServerError(message, backend=backend)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
