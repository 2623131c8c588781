"""A real HTTP server on 127.0.0.1 speaking the OpenAI, Ollama and Anthropic APIs.

Each request takes the next scripted :class:`Reply` (per model, else the shared queue), or
answers normally. Replies can fail with any status and headers, hang, answer slowly, answer
HTML instead of JSON, or drop the connection. Every request is recorded, so tests count
retries at the server.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
HANG_LIMIT = 30.0  # s: a hanging reply gives up after this, or when the server stops


@dataclass
class Reply:
    """How to answer one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body instead of the API's answer
    text: str | None = None  # the answer text (default: names the model, echoes the prompt)
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer
    drop: bool = False  # close the connection without an answer
    cut: bool = False  # stream: close the connection before the stream's end marker
    content_type: str = "application/json"
    gate: threading.Event | None = None  # streams: hold the rest after the first piece
    cut_early: bool = False  # streams: close the connection after the first piece


def answer(text: str | None = None, *, delay: float = 0.0) -> Reply:
    return Reply(text=text, delay=delay)


def error(status: int, message: str = "scripted failure", **headers: str) -> Reply:
    body = json.dumps({"error": {"message": message, "type": "fake_error"}}).encode()
    return Reply(status=status, body=body, headers=dict(headers))


def rate_limited(retry_after: str | None = None, *, ms: str | None = None) -> Reply:
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if ms is not None:
        headers["retry-after-ms"] = ms
    reply = error(429, "Rate limit reached for requests")
    reply.headers.update(headers)
    return reply


def hang() -> Reply:
    return Reply(hang=True)


def html(status: int = 200) -> Reply:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    return Reply(status=status, body=page, content_type="text/html")


def drop() -> Reply:
    return Reply(drop=True)


def cut(text: str | None = None) -> Reply:
    """A stream cut short: every event but the end marker ([DONE], message_stop, done)."""
    return Reply(text=text, cut=True)


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    client: tuple[str, int]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a fan-out connects dozens of clients at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are scripted, not errors


class FakeLLMServer:
    """Start with :meth:`start` (or the ``llm_server`` fixture); ``url`` is its base URL."""

    def __init__(self, *, delay: float = 0.0, require_key: str | None = None) -> None:
        self.delay = delay  # default delay of every answer, seconds
        self.require_key = require_key  # answer 401 unless this key is sent
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._per_model: dict[str, deque[Reply]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}"

    def script(self, *replies: Reply, model: str | None = None) -> None:
        """Queue replies for the next requests (for ``model`` only, when given)."""
        with self._lock:
            queue = self._queue if model is None else self._per_model.setdefault(model, deque())
            queue.extend(replies)

    def count(self, path: str | None = None, model: str | None = None) -> int:
        """Requests received, optionally only to ``path`` or for ``model``."""
        with self._lock:
            seen = list(self.requests)
        return sum(
            1
            for s in seen
            if (path is None or s.path == path)
            and (model is None or (isinstance(s.body, dict) and s.body.get("model") == model))
        )

    def start(self) -> FakeLLMServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def next_reply(self, body: Any) -> Reply:
        model = body.get("model") if isinstance(body, dict) else None
        with self._lock:
            queue = self._per_model.get(model or "")
            if queue:
                return queue.popleft()
            if self._queue:
                return self._queue.popleft()
        return Reply(delay=self.delay)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def done(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes
    fake: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._serve(body)

    def _serve(self, body: Any) -> None:
        fake = self.fake
        path = self.path.split("?", 1)[0]
        headers = dict(self.headers.items())
        fake.record(Seen(self.command, path, headers, body, time.monotonic(), self.client_address))
        try:
            self._reply(fake.next_reply(body), path, body)
        finally:
            fake.done()

    def _reply(self, reply: Reply, path: str, body: Any) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.hang:
            self.fake.stopping.wait(HANG_LIMIT)
            return self._drop()
        if reply.drop:
            return self._drop()
        if reply.body is None and not self._authorized():
            return self._send(401, error(401, "Incorrect API key provided").body or b"", {})
        if reply.body is not None:
            return self._send(reply.status, reply.body, reply.headers, reply.content_type)
        if isinstance(body, dict) and body.get("stream"):
            return self._stream(path, body, reply)
        document = _document(path, body, reply.text)
        self._send(reply.status, json.dumps(document).encode(), reply.headers)

    def _authorized(self) -> bool:
        key = self.fake.require_key
        if key is None:
            return True
        sent = self.headers.get("x-api-key") or self.headers.get("Authorization", "")
        return sent in (key, f"Bearer {key}")

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(
        self,
        status: int,
        data: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, path: str, body: dict[str, Any], reply: Reply) -> None:
        text = reply.text if reply.text is not None else _default_text(body)
        if path == "/api/chat":
            lines, content_type = _ollama_lines(body, text), "application/x-ndjson"
        elif path == "/v1/messages":
            lines, content_type = _anthropic_events(body, text), "text/event-stream"
        else:
            lines, content_type = _openai_events(body, text), "text/event-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Connection", "close")
        self.end_headers()
        if reply.cut:
            lines = lines[:-1]
        for number, line in enumerate(lines):
            self.wfile.write(line.encode())
            self.wfile.flush()
            if number == 0 and reply.cut_early:
                return self._drop()
            if number == 0 and reply.gate is not None:
                reply.gate.wait(HANG_LIMIT)
        self.close_connection = True


def _prompt(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages") or []
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _default_text(body: Any) -> str:
    model = body.get("model") if isinstance(body, dict) else None
    return f"{model} answers: {_prompt(body)[:200]}"


def _words(text: str) -> int:
    return len(text.split())


def _document(path: str, body: Any, text: str | None) -> Any:
    if path in ("/v1/models", "/models"):
        return {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}
    if path == "/api/tags":
        return {"models": [{"name": "fake-model:latest"}]}
    answer = text if text is not None else _default_text(body)
    tokens_in, tokens_out = _words(_prompt(body)), _words(answer)
    if path == "/api/chat":
        message = {"role": "assistant", "content": answer}
        counts = {"prompt_eval_count": tokens_in, "eval_count": tokens_out}
        return {"model": body.get("model"), "message": message, "done": True, **counts}
    if path == "/v1/messages":
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": answer}],
            "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
        }
    if path in OPENAI_PATHS:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out},
        }
    return {"error": {"message": f"no such path {path}"}}


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _openai_events(body: dict[str, Any], text: str) -> list[str]:
    events = []
    for piece in _pieces(text):
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
        events.append(f"data: {json.dumps(chunk)}\n\n")
    usage = {"prompt_tokens": _words(_prompt(body)), "completion_tokens": _words(text)}
    events.append(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n")
    events.append("data: [DONE]\n\n")
    return events


def _anthropic_events(body: dict[str, Any], text: str) -> list[str]:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    usage_in = {"usage": {"input_tokens": _words(_prompt(body)), "output_tokens": 1}}
    events = [event("message_start", {"message": usage_in})]
    for piece in _pieces(text):
        delta = {"index": 0, "delta": {"type": "text_delta", "text": piece}}
        events.append(event("content_block_delta", delta))
    events.append(event("message_delta", {"usage": {"output_tokens": _words(text)}}))
    events.append(event("message_stop", {}))
    return events


def _ollama_lines(body: dict[str, Any], text: str) -> list[str]:
    lines = []
    for piece in _pieces(text):
        lines.append(
            json.dumps({"message": {"role": "assistant", "content": piece}, "done": False})
        )
    counts = {"prompt_eval_count": _words(_prompt(body)), "eval_count": _words(text)}
    lines.append(
        json.dumps({"message": {"role": "assistant", "content": ""}, "done": True, **counts})
    )
    return [line + "\n" for line in lines]


CANNED = json.dumps(_document("/v1/chat/completions", {"model": "m"}, "canned answer")).encode()


def _canned_stream() -> bytes:
    """The canned answer as one chunked OpenAI stream: role, text, finish, ``[DONE]``."""
    body = "".join(_openai_events({"model": "m"}, "canned answer")).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n"
    return head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"


async def _serve_canned(delay: float) -> None:
    """A lean asyncio server answering every request with one canned OpenAI answer (a
    request asking for ``"stream": true`` gets it as one chunked event stream).

    Benchmarks use it as their floor: it costs far less per request than the threaded
    fake, so what is measured is the client.
    """
    import asyncio

    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    response = head % len(CANNED) + CANNED
    streamed = _canned_stream()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                headers = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in headers.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(streamed if b'"stream": true' in body else response)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


@contextmanager
def in_subprocess(delay: float = 0.0, *, lean: bool = False) -> Iterator[str]:
    """A fake server in a child process, so it shares no GIL with the client; yields its URL.

    ``lean`` serves the canned answer of :func:`_serve_canned` instead of the full fake.
    """
    repo = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-m", "tests.fakes.server", str(delay), *(["lean"] if lean else [])]
    proc = subprocess.Popen(
        argv, cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def main() -> None:
    """``python -m tests.fakes.server [DELAY] [lean]``: serve until stdin closes."""
    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    if sys.argv[2:] == ["lean"]:
        import asyncio

        asyncio.run(_serve_canned(delay))
        return
    server = FakeLLMServer(delay=delay).start()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
