"""Requests of both APIs read into one shape: a model name and a conversation request.

Only text travels: tools, images and audio answer 400 naming the field, so a client never
gets an answer that silently ignored part of its request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from llm_mux.backends.base import Message, Request
from llm_mux.backends.conversation import conversation_request
from llm_mux.serve.errors import ApiError

UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call")


@dataclass(frozen=True)
class Call:
    """One chat request: which model, the backend request, whether to stream."""

    model: str
    request: Request
    stream: bool
    include_usage: bool = False


def bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def decode(raw: bytes) -> dict[str, Any]:
    """The JSON object in the body; 400 for anything else."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise bad(f"the body is not valid JSON: {reason}") from None
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    return body


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("'model' is required and must be a string", "model")
    return model


def _unsupported(body: dict[str, Any]) -> None:
    for name in UNSUPPORTED:
        if body.get(name) is not None:
            raise bad(f"'{name}' is not supported by llm-mux serve", name)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad(f"'{name}' must be a boolean", name)
    return value


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(f"'{name}' must be a positive integer", name)
    return value


def _temperature(body: dict[str, Any]) -> float | None:
    value = body.get("temperature")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise bad("'temperature' must be a number from 0 to 2", "temperature")
    return float(value)


def _stops(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise bad(f"'{name}' must be a string or a list of strings", name)


def _text(content: Any, where: str, part_types: tuple[str, ...] = ("text",)) -> str:
    """The text of a string, or of a list of text parts; 400 naming any other part."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(f"'{where}' must be a string or a list of text parts", where)
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in part_types:
            raise bad(f"'{where}[{i}]' of type {kind!r} is not supported (text only)", where)
        text = part.get("text")
        if not isinstance(text, str):
            raise bad(f"'{where}[{i}].text' must be a string", f"{where}[{i}].text")
        texts.append(text)
    return "".join(texts)


def _messages(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' is required and must be a non-empty list", "messages")
    return messages


def openai_call(body: dict[str, Any]) -> Call:
    """``POST /v1/chat/completions``."""
    model = _model(body)
    _unsupported(body)
    system: list[str] = []
    turns: list[Message] = []
    for i, message in enumerate(_messages(body)):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant"):
            raise bad(f"'{where}.role' {role!r} is not supported", f"{where}.role")
        if message.get("tool_calls") or message.get("function_call"):
            raise bad(f"'{where}.tool_calls' is not supported", f"{where}.tool_calls")
        text = _text(message.get("content"), f"{where}.content")
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Message(role, text))
    if not turns:
        raise bad("'messages' holds no user or assistant message", "messages")
    max_tokens = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    request = conversation_request(
        "\n\n".join(system) or None,
        turns,
        max_tokens=max_tokens,
        temperature=_temperature(body),
        stop=_stops(body.get("stop"), "stop"),
    )
    options = body.get("stream_options")
    usage = isinstance(options, dict) and options.get("include_usage") is True
    return Call(model, request, _flag(body, "stream"), usage)


def anthropic_call(body: dict[str, Any]) -> Call:
    """``POST /v1/messages``."""
    model = _model(body)
    _unsupported(body)
    system = body.get("system")
    system_text = _text(system, "system") if system is not None else None
    turns: list[Message] = []
    for i, message in enumerate(_messages(body)):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise bad(f"'{where}.role' must be 'user' or 'assistant'", f"{where}.role")
        turns.append(Message(role, _text(message.get("content"), f"{where}.content")))
    request = conversation_request(
        system_text or None,
        turns,
        max_tokens=_positive_int(body, "max_tokens"),
        temperature=_temperature(body),
        stop=_stops(body.get("stop_sequences"), "stop_sequences"),
    )
    return Call(model, request, _flag(body, "stream"))
