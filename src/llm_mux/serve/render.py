"""Answers in each API's shape: whole documents, and the events of a stream."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from llm_mux.backends.base import Usage
from llm_mux.serve.errors import ApiError


@dataclass
class Choice:
    """One backend's answer (a parallel role has one per backend)."""

    backend: str
    text: str


@dataclass
class Answer:
    """What a role call gave: the choices, in role order, and the usage summed."""

    model: str
    choices: list[Choice]
    input_tokens: int = 0
    output_tokens: int = 0
    parallel: bool = False

    def add(self, usage: Usage | None) -> None:
        if usage is not None:
            self.input_tokens += usage.input_tokens or 0
            self.output_tokens += usage.output_tokens or 0


def _dumps(document: Any) -> str:
    """Compact JSON, ASCII-escaped: a lone surrogate from a client stays valid JSON."""
    return json.dumps(document, separators=(",", ":"))


def openai_document(answer: Answer) -> dict[str, Any]:
    choices = []
    for index, choice in enumerate(answer.choices):
        item: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": choice.text},
            "finish_reason": "stop",
        }
        if answer.parallel:
            item["backend"] = choice.backend
        choices.append(item)
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
        },
    }


def anthropic_document(answer: Answer) -> dict[str, Any]:
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": [{"type": "text", "text": c.text} for c in answer.choices],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
    }


@dataclass
class OpenAIStream:
    """``chat.completion.chunk`` events: role first, content deltas, finish, ``[DONE]``."""

    model: str
    backends: list[str]
    parallel: bool
    include_usage: bool = False
    id: str = field(default_factory=lambda: "chatcmpl-" + secrets.token_hex(12))
    created: int = field(default_factory=lambda: int(time.time()))

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        document = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return f"data: {_dumps(document)}\n\n".encode()

    def _choice(self, index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
        if self.parallel:
            choice["backend"] = self.backends[index]
        return choice

    def start(self) -> bytes:
        roles = {"role": "assistant", "content": ""}
        return self._chunk([self._choice(i, roles, None) for i in range(len(self.backends))])

    def delta(self, index: int, text: str) -> bytes:
        return self._chunk([self._choice(index, {"content": text}, None)])

    def end(self, input_tokens: int, output_tokens: int) -> bytes:
        finish = [self._choice(i, {}, "stop") for i in range(len(self.backends))]
        out = self._chunk(finish)
        if self.include_usage:
            usage = {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            }
            out += self._chunk([], usage=usage)
        return out + b"data: [DONE]\n\n"

    def error(self, error: ApiError) -> bytes:
        return f"data: {_dumps(error.openai())}\n\n".encode()


@dataclass
class AnthropicStream:
    """Messages API events: ``message_start``, one text block per backend, ``message_stop``."""

    model: str
    backends: list[str]
    id: str = field(default_factory=lambda: "msg_" + secrets.token_hex(12))

    @staticmethod
    def _event(kind: str, data: dict[str, Any]) -> bytes:
        return f"event: {kind}\ndata: {_dumps({'type': kind, **data})}\n\n".encode()

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out = self._event("message_start", {"message": message})
        for index in range(len(self.backends)):
            block = {"index": index, "content_block": {"type": "text", "text": ""}}
            out += self._event("content_block_start", block)
        return out

    def delta(self, index: int, text: str) -> bytes:
        delta = {"type": "text_delta", "text": text}
        return self._event("content_block_delta", {"index": index, "delta": delta})

    def end(self, input_tokens: int, output_tokens: int) -> bytes:
        out = b"".join(
            self._event("content_block_stop", {"index": i}) for i in range(len(self.backends))
        )
        usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        out += self._event("message_delta", {"delta": delta, "usage": usage})
        return out + self._event("message_stop", {})

    def error(self, error: ApiError) -> bytes:
        return self._event("error", {"error": error.anthropic()["error"]})
