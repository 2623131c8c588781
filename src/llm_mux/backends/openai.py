"""OpenAI-compatible chat completions: ``POST {command}/chat/completions``.

Works with OpenAI and the many servers that speak its API (vLLM, llama.cpp, LM Studio,
Ollama's ``/v1``). With ``stream = true`` the server-sent events are accumulated.
"""

from __future__ import annotations

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


class OpenAIBackend(HttpBackend):
    """A backend of type ``openai`` (also inferred from a URL command)."""

    kind = "openai"
    endpoint = "/chat/completions"
    models_endpoint = "/models"
    url_hint = "command is the API's base URL, usually ending in /v1 (http://HOST:PORT/v1)"

    def body(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": request_messages(request, self.system(request)),
            **self.sampling(request),
        }
        if self.cfg.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return merge(body, self.cfg.params)

    def answer(self, data: Any) -> tuple[str, Usage | None]:
        content = data["choices"][0]["message"]["content"]
        return _content_text(content), _usage(data.get("usage"))

    async def iter_stream(self, response: Answer) -> AsyncIterator[Delta]:
        size = 0
        finished = False
        async for event in sse.events(response, self._max_bytes):
            if event.data.strip() == "[DONE]":
                finished = True
                break
            chunk = event.json()
            if not isinstance(chunk, dict):
                continue
            if "error" in chunk:
                raise stream_error(chunk["error"], backend=self.name)
            usage = _usage(chunk.get("usage"))
            finished = finished or _finish_reason(chunk) is not None
            piece = _delta(chunk)
            size = self.counted(size, piece)
            if piece or usage is not None:
                yield Delta(piece, usage)
        if not finished:
            raise truncated(response, "[DONE] or a finish_reason", backend=self.name)


def _finish_reason(chunk: dict[str, Any]) -> Any:
    choices = chunk.get("choices") or []
    return choices[0].get("finish_reason") if choices and isinstance(choices[0], dict) else None


def _delta(chunk: dict[str, Any]) -> str:
    choices = chunk.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else ""


def _content_text(content: Any) -> str:
    """The message content: a string, or a list of text parts (some compatible servers)."""
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise TypeError("content is not text")
    return content


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(
        input_tokens=int_or_none(data.get("prompt_tokens")),
        output_tokens=int_or_none(data.get("completion_tokens")),
    )
