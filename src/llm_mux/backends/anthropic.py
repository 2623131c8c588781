"""Anthropic's Messages API: ``POST {command}/v1/messages``.

The key goes in ``x-api-key``, the API version in ``anthropic-version`` (backend
``api_version``, default 2023-06-01); ``max_tokens`` is required by the API, so it defaults
to 4096. With ``stream = true`` the server-sent events are accumulated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from llm_mux.backends import sse
from llm_mux.backends.base import Delta, Request, Usage
from llm_mux.backends.http import HttpBackend, int_or_none, merge, stream_error, truncated

if TYPE_CHECKING:
    from llm_mux.backends.http import Answer

DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096


class AnthropicBackend(HttpBackend):
    """A backend of type ``anthropic``; ``command`` is e.g. ``https://api.anthropic.com``."""

    kind = "anthropic"
    endpoint = "/v1/messages"
    models_endpoint = "/v1/models"
    url_hint = "command is the server root without /v1 (https://api.anthropic.com)"

    def headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"anthropic-version": self.cfg.api_version or DEFAULT_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.turns()],
            **self.sampling(request, stop="stop_sequences"),
        }
        body["max_tokens"] = body.get("max_tokens") or DEFAULT_MAX_TOKENS  # the API requires it
        system = self.system(request)
        if system:
            body["system"] = system
        if self.cfg.stream:
            body["stream"] = True
        return merge(body, self.cfg.params)

    def answer(self, data: Any) -> tuple[str, Usage | None]:
        blocks = data["content"]
        if not isinstance(blocks, list):
            raise TypeError("content is not a list")
        text = "".join(b["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        return text, _usage(data.get("usage"))

    async def iter_stream(self, response: Answer) -> AsyncIterator[Delta]:
        tokens_in = tokens_out = None
        size = 0
        async for event in sse.events(response, self._max_bytes):
            data = event.json() if event.data else {}
            if not isinstance(data, dict):
                continue
            kind = data.get("type", event.event)
            if kind == "error":
                raise stream_error(data.get("error", data), backend=self.name)
            if kind == "message_start":
                tokens_in = input_tokens((data.get("message") or {}).get("usage"))
            elif kind == "message_delta":
                usage = data.get("usage") or {}
                tokens_out = int_or_none(usage.get("output_tokens"))
                tokens_in = input_tokens(usage) or tokens_in
            elif kind == "content_block_delta":
                piece = (data.get("delta") or {}).get("text") or ""
                size = self.counted(size, piece)
                if piece:
                    yield Delta(piece)
            elif kind == "message_stop":
                yield Delta("", Usage(tokens_in, tokens_out))
                return
        raise truncated(response, "message_stop", backend=self.name)


_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def input_tokens(data: Any) -> int | None:
    """All input tokens: the API counts cache reads and writes apart from ``input_tokens``
    (a repeated 37-token prompt reports ``input_tokens: 1``)."""
    if not isinstance(data, dict):
        return None
    counts = [n for key in _INPUT_KEYS if (n := int_or_none(data.get(key))) is not None]
    return sum(counts) if counts else None


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(
        input_tokens=input_tokens(data),
        output_tokens=int_or_none(data.get("output_tokens")),
    )
