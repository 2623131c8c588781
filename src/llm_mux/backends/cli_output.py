"""JSON output modes of agent CLIs, parsed to the plain-text answer with usage and cost.

``claude -p --output-format json`` prints one result object (``stream-json``: one event per
line ending in the same result object); ``codex exec --json`` prints a JSONL event stream
whose last agent message is the answer; ``gemini -o json`` prints ``{"response", "stats"}``.
The mode is detected from the backend's args and the shape of what was printed; anything
that is not such JSON is returned as raw text.

Failures come back structured: claude's ``{"is_error": true, "api_error_status": 400,
"result": "API Error: …"}``, gemini's ``{"error": {"message", "code"}}`` (on stderr, with the
code as exit status: 41 is an authentication failure, 42 bad input) and codex's
``{"type": "error", "message"}`` events become a message and, where known, an HTTP status,
so the caller can classify the failure and show the text instead of the JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_mux.backends.base import Usage

_JSON_FLAGS = ("--json", "--experimental-json")
_FORMAT_OPTIONS = ("--output-format", "-o", "--format")
_JSON_FORMATS = ("json", "stream-json", "jsonl")
_GEMINI_CODES = {41: "Auth", 42: "BadRequest"}  # gemini-cli: FatalAuthenticationError, input
_STATUS_IN_TEXT = re.compile(r"\b(?:status|HTTP|API Error)[: ]+([45]\d\d)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """The answer found in a CLI's output; ``error`` is set when the JSON reports a failure,
    with the HTTP ``status`` behind it when the CLI says (or its message names) one, or the
    ``error_class`` its own error code stands for."""

    text: str
    usage: Usage | None = None
    error: str | None = None
    status: int | None = None
    error_class: str | None = None


def json_mode(args: Sequence[str]) -> bool:
    """Whether ``args`` ask the CLI for one of the JSON output modes."""
    for i, arg in enumerate(args):
        if arg in _JSON_FLAGS:
            return True
        name, eq, value = arg.partition("=")
        if eq and name in _FORMAT_OPTIONS and value in _JSON_FORMATS:
            return True
        if arg in _FORMAT_OPTIONS and i + 1 < len(args) and args[i + 1] in _JSON_FORMATS:
            return True
    return False


def parse_output(stdout: str, *, json_mode: bool) -> Parsed:
    """The answer in ``stdout``: parsed when a JSON mode is on and it parses, else raw text."""
    raw = Parsed(stdout.rstrip())
    if not json_mode:
        return raw
    document = _load(stdout)
    if isinstance(document, dict):
        found = _from_object(document)
        if found is not None:
            return found
    events = [document] if isinstance(document, dict) else _load_lines(stdout)
    if events:
        return _from_events(events) or raw
    return raw


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _load_lines(text: str) -> list[dict[str, Any]]:
    """JSON objects of a JSONL stream; stray non-JSON lines (warnings) are skipped."""
    events = []
    for line in text.splitlines():
        item = _load(line) if line.strip().startswith("{") else None
        if isinstance(item, dict):
            events.append(item)
    return events


def _from_object(doc: dict[str, Any]) -> Parsed | None:
    if doc.get("type") == "result" or "result" in doc:
        return _claude(doc)
    if "response" in doc or isinstance(doc.get("error"), dict):
        return _gemini(doc)
    return None


def _claude(doc: dict[str, Any]) -> Parsed:
    text = _text(doc.get("result"))
    usage = _dict(doc.get("usage"))
    tokens_in = _sum(
        usage,
        ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"),
    )
    cost = doc.get("total_cost_usd", doc.get("cost_usd"))
    found = Usage(
        input_tokens=tokens_in,
        output_tokens=_int(usage.get("output_tokens")),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
    )
    failed = doc.get("is_error") is True or str(doc.get("subtype", "")).startswith("error")
    if not failed:
        return Parsed(text, found)
    message = text or str(doc.get("subtype"))
    status = _int(doc.get("api_error_status")) or status_in(message)
    return Parsed(text, found, error=message, status=status)


def _gemini(doc: dict[str, Any]) -> Parsed:
    error = doc.get("error")
    if isinstance(error, dict):
        message = _text(error.get("message")) or json.dumps(error)
        code = _int(error.get("code"))
        status = code if code is not None and 400 <= code < 600 else status_in(message)
        kind = _GEMINI_CODES.get(code or 0)
        return Parsed("", error=message, status=status, error_class=kind)
    tokens_in = tokens_out = None
    for model in _dict(_dict(doc.get("stats")).get("models")).values():
        tokens = _dict(_dict(model).get("tokens"))
        tokens_in = _add(tokens_in, _int(tokens.get("prompt", tokens.get("input"))))
        tokens_out = _add(tokens_out, _int(tokens.get("candidates", tokens.get("output"))))
    return Parsed(_text(doc.get("response")), Usage(tokens_in, tokens_out))


def _from_events(events: list[dict[str, Any]]) -> Parsed | None:
    results = [e for e in events if e.get("type") == "result"]
    if results:
        return _claude(results[-1])
    return _codex(events)


def _codex(events: list[dict[str, Any]]) -> Parsed | None:
    """Codex JSONL, both the ``item.completed`` stream and the older ``{"msg": …}`` one."""
    answer: str | None = None
    error: str | None = None
    status: int | None = None
    tokens_in = tokens_out = None
    for event in events:
        kind, body = _codex_event(event)
        if kind == "agent_message":
            answer = _text(body.get("text", body.get("message")))
        elif kind == "task_complete" and body.get("last_agent_message"):
            answer = _text(body["last_agent_message"])
        elif kind in ("error", "turn.failed") and event.get("type") != "item.completed":
            error = _codex_error(body)
            status = _int(body.get("status")) or status_in(error)
        elif kind in ("turn.completed", "token_count"):
            usage = _dict(body.get("usage")) or body
            tokens_in = _add(tokens_in, _int(usage.get("input_tokens")))
            tokens_out = _add(tokens_out, _int(usage.get("output_tokens")))
    if answer is None and error is None:
        return None
    found = Usage(tokens_in, tokens_out)
    if answer is not None:
        return Parsed(answer, found)
    return Parsed("", found, error=error, status=status)


def _codex_event(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event kind, payload) for both codex formats."""
    msg = event.get("msg")
    if isinstance(msg, dict):
        return str(msg.get("type", "")), msg
    item = event.get("item")
    if event.get("type") == "item.completed" and isinstance(item, dict):
        return str(item.get("type", "")), item
    return str(event.get("type", "")), event


def _codex_error(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return _text(error.get("message")) or json.dumps(error)
    return _text(body.get("message") or error) or "the command reported an error"


def status_in(message: str) -> int | None:
    """An HTTP status a message names ("unexpected status 401", "HTTP 429")."""
    match = _STATUS_IN_TEXT.search(message)
    return int(match.group(1)) if match else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else json.dumps(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _add(total: int | None, value: int | None) -> int | None:
    if value is None:
        return total
    return (total or 0) + value


def _sum(data: dict[str, Any], keys: Sequence[str]) -> int | None:
    total = None
    for key in keys:
        total = _add(total, _int(data.get(key)))
    return total
