"""The ASGI application: routes, keys, body limits, headers, and the two chat endpoints.

Plain ASGI (no framework): one small :class:`Exchange` per request. Each chat request is one
role or backend call through the same :class:`~llm_mux.roles.Multiplexer` as ``ask``; a
client that disconnects cancels it (CLI process groups are killed as on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from llm_mux.config import Config, Team
from llm_mux.roles import Multiplexer
from llm_mux.serve import chat
from llm_mux.serve.access import AccessLog
from llm_mux.serve.errors import ApiError
from llm_mux.serve.metrics import Metrics
from llm_mux.serve.models import exposed_models

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MiB = 1024 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
CHAT_PATHS = {"/v1/chat/completions": "openai", "/chat/completions": "openai"}
MESSAGES_PATHS = {"/v1/messages": "anthropic", "/messages": "anthropic"}


ROUTES = {
    "/health": ("GET", "_health"),
    "/v1/models": ("GET", "_models"),
    "/models": ("GET", "_models"),
    "/metrics": ("GET", "_metrics"),
    **{path: ("POST", "_chat") for path in (*CHAT_PATHS, *MESSAGES_PATHS)},
}


class ServeApp:
    """Every role and enabled backend of ``config`` behind the OpenAI and Anthropic APIs."""

    def __init__(
        self,
        config: Config,
        *,
        api_keys: list[str],
        team: Team | None = None,
        cwd: Path | None = None,
        access: AccessLog | None = None,
    ) -> None:
        self.config = config
        self.team = team
        self.cwd = cwd
        self.keys = [k.encode() for k in api_keys if k]
        self.models = exposed_models(config)
        self.max_body = int(config.serve.max_body_mb * MiB)
        self.origins = set(config.serve.cors_origins)
        self.metrics = Metrics()
        self.access = access or AccessLog()
        self.created = int(time.time())
        self._mux: Multiplexer | None = None

    @property
    def mux(self) -> Multiplexer:
        """The one multiplexer (HTTP pool, limits) every request of this process shares."""
        if self._mux is None:
            self._mux = Multiplexer(self.config, team=self.team, cwd=self.cwd)
        return self._mux

    def target(self, model: str) -> tuple[str, bool]:
        """(name, is_role) for an exposed model; 404 otherwise. A role wins over a backend."""
        if model not in self.models:
            raise ApiError(404, f"unknown model '{model}'", param="model", code="model_not_found")
        return model, model in self.config.roles

    def authorized(self, headers: dict[bytes, bytes]) -> bool:
        if not self.keys:
            return True
        sent = headers.get(b"x-api-key")
        if sent is None:
            auth = headers.get(b"authorization", b"")
            sent = auth[7:] if auth[:7].lower() == b"bearer " else b""
        found = False
        for key in self.keys:  # every key compared, in constant time
            found |= hmac.compare_digest(sent, key)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await Exchange(self, scope, receive, send).handle()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        try:
            await self._lifespan_events(receive, send)
        except asyncio.CancelledError:
            pass  # a forced exit skips the shutdown event; nothing is left to report

    async def _lifespan_events(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._mux is not None:
                    await self._mux.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class Disconnected(Exception):
    """The client went away before its request was read."""


class Exchange:
    """One HTTP request and its answer, with what the access line and metrics report."""

    def __init__(self, app: ServeApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self._send = send
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = {k.lower(): v for k, v in scope.get("headers", [])}
        self.request_id = _request_id(self.headers.get(b"x-request-id"))
        self.shape = "anthropic" if self.path in MESSAGES_PATHS else "openai"
        self.model = ""
        self.backends: list[str] = []
        self.status = 0
        self.started = time.monotonic()
        self.finished = False  # the last byte of the answer was sent
        self.client_left = False

    async def handle(self) -> None:
        metrics = self.app.metrics
        chat = self.method == "POST"
        if chat:
            metrics.in_flight.inc()
        try:
            await self._route()
        except ApiError as error:
            await self.fail(error)
        except Disconnected:
            self.status = 499
        except asyncio.CancelledError:
            # Cancelled at shutdown (grace over, or a second signal): the request ends here;
            # letting the cancellation out would only make the server log a traceback.
            with contextlib.suppress(Exception):
                await self.fail(ApiError(503, "the server is shutting down"))
        except Exception:
            self.app.access.crash(self)
            await self.fail(ApiError(500, "internal error (see the server's log)"))
        finally:
            if chat:
                metrics.in_flight.dec()
            self._record()

    def _record(self) -> None:
        if self.status == 0:
            self.status = 499  # cancelled before any answer: the client left, or shutdown
        seconds = time.monotonic() - self.started
        label = self.model if self.model in self.app.models else ""
        self.app.metrics.requests.labels(label or "-", str(self.status)).inc()
        if label:
            self.app.metrics.duration.labels(label).observe(seconds)
        self.app.access.line(self, seconds)

    async def _route(self) -> None:
        if self.method == "OPTIONS":
            return await self._preflight()
        path = self.path.rstrip("/") or "/"
        if path != "/health" and not self.app.authorized(self.headers):
            raise ApiError(401, "missing or wrong API key (Authorization: Bearer or x-api-key)")
        found = ROUTES.get(path)
        if found is None:
            raise ApiError(404, f"no such endpoint: {self.path}")
        method, handler = found
        if self.method != method and not (method == "GET" and self.method == "HEAD"):
            raise ApiError(405, f"{self.path} answers {method} only")
        await getattr(self, handler)()

    async def _health(self) -> None:
        await self.json(200, {"status": "ok"})

    async def _models(self) -> None:
        data = [
            {"id": name, "object": "model", "created": self.app.created, "owned_by": "llm-mux"}
            for name in self.app.models
        ]
        await self.json(200, {"object": "list", "data": data})

    async def _metrics(self) -> None:
        body, content_type = self.app.metrics.render()
        await self.respond(200, body, content_type)

    async def _chat(self) -> None:
        body = await self.read_body()
        await self.guarded(chat.answer(self, body))

    async def _preflight(self) -> None:
        origin = self.headers.get(b"origin", b"").decode("latin-1")
        if not self._allowed(origin):
            raise ApiError(403, "origin not allowed ([serve] cors_origins)")
        asked = self.headers.get(b"access-control-request-headers", b"")
        extra = [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", asked or b"authorization, content-type"),
            (b"access-control-max-age", b"600"),
        ]
        await self.respond(204, b"", None, extra)

    def _allowed(self, origin: str) -> bool:
        return bool(origin) and (origin in self.app.origins or "*" in self.app.origins)

    # -- reading -------------------------------------------------------------------------

    async def read_body(self) -> bytes:
        """The whole body; 413 as soon as it is known to exceed ``max_body_mb``."""
        limit = self.app.max_body
        declared = self.headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise ApiError(400, "invalid Content-Length") from None
            if length > limit:
                raise self._too_large()
        chunks, size = [], 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _too_large(self) -> ApiError:
        mb = self.app.config.serve.max_body_mb
        return ApiError(413, f"the body is larger than {mb:g} MB ([serve] max_body_mb)")

    async def guarded(self, work: Awaitable[None]) -> None:
        """Run ``work`` in this task, cancelling it if the client disconnects first."""
        current = asyncio.current_task()
        assert current is not None
        watch = asyncio.ensure_future(self._disconnect())
        guarding = [True]

        def on_disconnect(_: object) -> None:
            if guarding[0] and not watch.cancelled() and not self.finished:
                self.client_left = True
                current.cancel()

        watch.add_done_callback(on_disconnect)
        try:
            await work
        except asyncio.CancelledError:
            if self.client_left and current.uncancel() == 0:  # ours, not a shutdown's
                return
            raise
        finally:
            guarding[0] = False
            watch.cancel()

    async def _disconnect(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass

    # -- answering -----------------------------------------------------------------------

    def _common_headers(self) -> list[tuple[bytes, bytes]]:
        backends = ",".join(self.backends).encode("ascii", "replace")
        headers = [(b"x-request-id", self.request_id.encode()), (b"x-llm-mux-backend", backends)]
        origin = self.headers.get(b"origin", b"").decode("latin-1")
        if self.app.origins and self._allowed(origin):
            headers += [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
        return headers

    async def start(
        self,
        status: int,
        content_type: str | None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Send the status line and headers (the first byte of the answer)."""
        headers = self._common_headers() + (extra or [])
        if content_type is not None:
            headers.append((b"content-type", content_type.encode()))
        if content_type == "text/event-stream":
            headers += [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
        self.status = status
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, *, more: bool = True) -> None:
        if not more:
            self.finished = True
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(
        self,
        status: int,
        data: bytes,
        content_type: str | None = "application/json",
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        length = [(b"content-length", str(len(data)).encode())]
        await self.start(status, content_type, length + (extra or []))
        await self.body(data, more=False)

    async def json(self, status: int, document: Any) -> None:
        data = json.dumps(document, separators=(",", ":")).encode()
        await self.respond(status, data)

    async def fail(self, error: ApiError) -> None:
        """The error in the endpoint's shape, unless the answer has already started."""
        if self.status:
            return
        await self.respond(error.status, error.body(self.shape), extra=error.headers())


def _request_id(sent: bytes | None) -> str:
    if sent:
        text = sent.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    return "req_" + secrets.token_hex(12)
