"""Interactive answers for ``input`` steps, read from the terminal without blocking the loop.

Only used when stdin is a terminal and the output is ``console``. Questions are asked one at
a time; the live view pauses while the user types. Reading waits on the event loop (no
thread), so Ctrl-C still stops the run at once.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from llm_mux.process import readable
from llm_mux.render import View
from llm_mux.secrets import redact


class TerminalAsk:
    """``await ask(prompt, options, default)`` → the user's answer."""

    def __init__(self, view: View) -> None:
        self.view = view
        self._lock = asyncio.Lock()

    async def __call__(self, prompt: str, options: Sequence[str], default: str | None) -> str:
        async with self._lock:
            self.view.stop()
            try:
                return await self._ask(prompt, options, default)
            finally:
                self.view.start()

    async def _ask(self, prompt: str, options: Sequence[str], default: str | None) -> str:
        question = _question(prompt, options, default)
        while True:
            _write(question)
            answer = _choose((await _read_line()).strip(), options, default)
            if answer is not None:
                return answer
            _write("please answer with one of the options (a number or the text)\n")


def _question(prompt: str, options: Sequence[str], default: str | None) -> str:
    lines = [redact(prompt.rstrip())]
    lines += [f"  {i}) {redact(option)}" for i, option in enumerate(options, 1)]
    body = "\n".join(lines)
    return f"{body}\n[{redact(default)}]> " if default is not None else f"{body}\n> "


def _choose(text: str, options: Sequence[str], default: str | None) -> str | None:
    if not text:
        return default if default is not None else (None if options else "")
    if not options or text in options:
        return text
    if text.isdigit() and 1 <= int(text) <= len(options):
        return options[int(text) - 1]
    return None


def _write(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


async def _read_line() -> str:
    fd = sys.stdin.fileno()
    await readable(fd)
    return os.read(fd, 65536).decode("utf-8", errors="replace")


def interactive(output: str) -> bool:
    """True when input steps may ask: console output and a terminal on stdin."""
    try:
        return output == "console" and sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
