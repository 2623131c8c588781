"""Ollama's native chat API: ``POST {command}/api/chat``.

``stream: false`` by default; with ``stream = true`` the newline-delimited JSON chunks are
accumulated. ``max_tokens`` and ``temperature`` go into Ollama's ``options``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from llm_mux.backends import sse
from llm_mux.backends.base import Delta, Request, Usage
from llm_mux.backends.http import (
    HttpBackend,
    int_or_none,
    merge,
    request_messages,
    stream_error,
    truncated,
)

if TYPE_CHECKING:
    from llm_mux.backends.http import Answer


class OllamaBackend(HttpBackend):
    """A backend of type ``ollama``; ``command`` is the server, e.g. ``http://localhost:11434``."""

    kind = "ollama"
    endpoint = "/api/chat"
    models_endpoint = "/api/tags"
    url_hint = "command is an Ollama server's root (http://127.0.0.1:11434), without /v1"
    stream_type = "application/x-ndjson"

    def body(self, request: Request) -> dict[str, Any]:
        options = self.sampling(request, max_tokens="num_predict")
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": request_messages(request, self.system(request)),
            "stream": self.cfg.stream,
        }
        if options:
            body["options"] = options
        return merge(body, self.cfg.params)

    def answer(self, data: Any) -> tuple[str, Usage | None]:
        if "error" in data:
            raise stream_error(data["error"], backend=self.name)
        content = data["message"]["content"]
        if not isinstance(content, str):
            raise TypeError("content is not text")
        return content, _usage(data)

    async def iter_stream(self, response: Answer) -> AsyncIterator[Delta]:
        size = 0
        async for line in sse.lines(response, self._max_bytes):
            if not line.strip():
                continue
            chunk = json.loads(line)
            if "error" in chunk:
                raise stream_error(chunk["error"], backend=self.name)
            piece = (chunk.get("message") or {}).get("content") or ""
            size = self.counted(size, piece)
            usage = _usage(chunk) if chunk.get("done") else None
            if piece or usage is not None:
                yield Delta(piece, usage)
            if chunk.get("done"):
                return
        raise truncated(response, 'a chunk with "done": true', backend=self.name)


def _usage(data: dict[str, Any]) -> Usage | None:
    tokens_in = int_or_none(data.get("prompt_eval_count"))
    tokens_out = int_or_none(data.get("eval_count"))
    if tokens_in is None and tokens_out is None:
        return None
    return Usage(input_tokens=tokens_in, output_tokens=tokens_out)
