"""Watching a CLI backend while it runs: the last lines it printed, and an early verdict.

Agent CLIs retry on their own: claude retries a refused key ten times, codex offline prints
``Reconnecting... waiting for network`` forever. Their JSON event streams already say why,
so the first decisive event ends the call with that class instead of waiting out the
timeout. Every failure quotes the last lines the CLI printed, JSON events shown as their text.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from llm_mux.backends.cli_output import status_in

TAIL_LINES = 10
LINE_LIMIT = 300  # characters of one quoted line
_PENDING_LIMIT = 64 * 1024  # bytes kept of a line that has not ended yet
_RAW_TAIL = 8 * 1024  # bytes kept of each stream when there are no JSON events to read
_NOT_DECISIVE = frozenset({408, 409, 429})  # statuses a CLI rightly retries on its own


@dataclass(frozen=True)
class Verdict:
    """Why a running CLI will not answer: its message, the HTTP status, or a lost network."""

    message: str
    status: int | None = None
    network: bool = False


class OutputWatch:
    """Fed the child's output as it arrives; keeps its tail and spots a decisive event."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        self.verdict: Verdict | None = None
        self.decided = asyncio.Event()
        self._lines: deque[str] = deque(maxlen=TAIL_LINES)
        self._pending: dict[str, bytes] = {}

    def feed(self, stream: str, chunk: bytes) -> None:
        """Take a chunk of ``stream`` ("stdout" or "stderr"). In a JSON mode every whole line
        is looked at; otherwise only the end of each stream is kept (output may be large)."""
        data = self._pending.get(stream, b"") + chunk
        if not self.json_mode:
            self._pending[stream] = data[-_RAW_TAIL:]
            return
        *lines, rest = data.split(b"\n")
        self._pending[stream] = rest[-_PENDING_LIMIT:]
        for line in lines:
            self._line(line.decode("utf-8", errors="replace"))

    def tail(self) -> str:
        """The last lines printed (stdout's, then stderr's), one per line; empty when none."""
        lines = list(self._lines)
        for stream in ("stdout", "stderr"):
            text = self._pending.get(stream, b"").decode("utf-8", errors="replace")
            recent = [_clip(line.strip()) for line in text.splitlines() if line.strip()]
            lines.extend(recent[-TAIL_LINES:])
        return "\n".join(lines[-TAIL_LINES:])

    def _line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        event = _event(line) if self.json_mode else None
        shown = line if event is None else describe(event)
        if shown:
            self._lines.append(_clip(shown))
        if event is not None and self.verdict is None:
            self.verdict = decisive(event)
            if self.verdict is not None:
                self.decided.set()


def describe(event: dict[str, Any]) -> str | None:
    """The text of one JSON event worth quoting; None for bookkeeping events."""
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "api_retry":
        status, error = event.get("error_status"), event.get("error") or "error"
        tries = f"attempt {event.get('attempt')}/{event.get('max_retries')}"
        return f"retrying after HTTP {status} {error} ({tries})"
    if kind == "result":
        return _str(event.get("result"))
    if kind == "error":
        return _str(event.get("message"))
    if kind == "turn.failed":
        return _str(_dict(event.get("error")).get("message"))
    item = _dict(event.get("item"))
    if kind == "item.completed" and item.get("type") in ("error", "agent_message"):
        return _str(item.get("message") or item.get("text"))
    return None


def decisive(event: dict[str, Any]) -> Verdict | None:
    """A verdict when ``event`` says the call cannot succeed, else None.

    claude: an ``api_retry`` for a client error (401, 403, 400…) it will only repeat;
    codex: an ``error`` event (except the reconnects it recovers from) or a failed turn.
    """
    kind = event.get("type")
    if kind == "system" and event.get("subtype") == "api_retry":
        status = event.get("error_status")
        if isinstance(status, int) and 400 <= status < 500 and status not in _NOT_DECISIVE:
            return Verdict(f"HTTP {status} {event.get('error') or 'error'}", status)
        return None
    if kind == "error":
        message = _str(event.get("message"))
        if message.startswith("Reconnecting..."):
            lost = "waiting for network" in message
            return Verdict(message, network=True) if lost else None
        return Verdict(message or "the command reported an error", status_in(message))
    if kind == "turn.failed":
        message = _str(_dict(event.get("error")).get("message")) or "the turn failed"
        return Verdict(message, status_in(message))
    return None


def _event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _clip(line: str) -> str:
    return line if len(line) <= LINE_LIMIT else line[:LINE_LIMIT] + "…"


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
