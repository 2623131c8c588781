"""JSON in an LLM answer: the one finder behind ``output_schema``, store steps and apply.

An answer may be JSON, hold it in a fenced block, or embed it in prose. The rules, in order:
the whole text; each fenced block labelled ``json`` (any case) or unlabelled, in order; each
JSON object or array embedded in the text, left to right. Decoding tolerates raw control
characters inside strings (models write raw newlines), and a value nested deeper than
:data:`MAX_DEPTH` is not taken as JSON.

Finding embedded JSON is linear in the text, whatever it holds. Trying a decoder at every
``{`` costs O(n) per try on hostile text (``{"x" `` repeated, ``[[[[…``), so instead one
scanner checks the JSON grammar from each opening bracket without building values and
remembers the outcome for every bracket it passes: a later start that was already seen
inside an earlier attempt costs one look-up. Starts inside an earlier attempt's strings
read the text in the other string phase, so every character is read at most twice in each
role; :attr:`Scanner.work` counts the tokens read, for tests. Only a span known to be
valid is decoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

MAX_DEPTH = 500  # below the decoder's own recursion limit

_DECODER = json.JSONDecoder(strict=False)
_WS = re.compile(r"[ \t\n\r]+")
_STRING = re.compile(r'"[^"\\]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\]*)*"')
_SCALAR = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null|NaN|-?Infinity"
)
_OPENER = re.compile(r"[\[{]")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+#.-]*)")
_JSON_LANGUAGES = ("json", "")


class _NoJson:
    def __repr__(self) -> str:
        return "NO_JSON"


NO_JSON: Any = _NoJson()
"""What :func:`loads` returns for text that is not one JSON value."""


def loads(text: str) -> Any:
    """``text`` (stripped) as one JSON value, or :data:`NO_JSON`."""
    try:
        return _DECODER.decode(text.strip())
    except (ValueError, RecursionError):
        return NO_JSON


def fenced_blocks(text: str) -> Iterator[tuple[str, str]]:
    """Yield ``(language, body)`` of each fenced code block; an unclosed fence runs to the end."""
    lines = text.split("\n")  # not splitlines(): form feeds etc. inside a body are content
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, language = opening.group(1), opening.group(2).lower()
        end = i + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        yield language, "\n".join(lines[i + 1 : end])
        i = end + 1


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and not stripped.strip(fence[0])


def fenced(text: str) -> Iterator[Any]:
    """The value of each ``json`` (or unlabelled) fenced block that is JSON, in order."""
    for language, body in fenced_blocks(text):
        if language in _JSON_LANGUAGES:
            value = loads(body)
            if value is not NO_JSON:
                yield value


def embedded(text: str, scanner: Scanner | None = None) -> Iterator[Any]:
    """Each JSON object or array in ``text``, left to right, none inside another."""
    scan = scanner or Scanner(text)
    pos = 0
    while (match := _OPENER.search(text, pos)) is not None:
        start = match.start()
        end = scan.value_end(start)
        if end < 0:
            pos = start + 1
            continue
        try:
            value, decoded_end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError):  # e.g. an integer too long to convert
            pos = end
            continue
        yield value
        pos = max(end, decoded_end)


def candidates(text: str) -> Iterator[Any]:
    """Every JSON value the answer holds, in the order of the rules above."""
    whole = loads(text)
    if whole is not NO_JSON:
        yield whole
    yield from fenced(text)
    yield from embedded(text)


def extract(text: str) -> Any:
    """The JSON an answer holds (the first candidate); ValueError if it holds none."""
    for value in candidates(text):
        return value
    raise ValueError("the answer holds no JSON")


def nested(value: Any, stop: Callable[[Any], bool] | None = None) -> Iterator[Any]:
    """``value`` and every object or array inside it, in document order.

    The walk does not enter a value for which ``stop`` is true (it is still yielded).
    """
    pending = [value]
    while pending:
        current = pending.pop()
        yield current
        if stop is not None and stop(current):
            continue
        children = current.values() if isinstance(current, dict) else current
        if isinstance(current, dict | list):
            pending.extend(c for c in reversed(list(children)) if isinstance(c, dict | list))


class Scanner:
    """Checks the JSON grammar from opening brackets of one text, remembering every outcome."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.work = 0  # tokens read, across every start
        self._end: dict[int, int] = {}  # bracket position -> end of its value, or -1

    def value_end(self, start: int) -> int:
        """End of the JSON object or array at ``start``, or -1 if none starts there."""
        known = self._end.get(start)
        if known is not None:
            return known
        return self._scan(start)

    def _scan(self, start: int) -> int:
        text, n = self.text, len(self.text)
        stack: list[list[int]] = []  # [start, is_object, state]
        pos = self._open(stack, start)
        while stack:
            self.work += 1
            if blank := _WS.match(text, pos):
                pos = blank.end()
            frame = stack[-1]
            char = text[pos] if pos < n else ""
            state = frame[2]
            if state == _AFTER_VALUE:
                if char == ",":
                    frame[2] = _KEY if frame[1] else _VALUE
                    pos += 1
                elif char == ("}" if frame[1] else "]"):
                    pos = self._close(stack, pos + 1)
                else:
                    return self._fail(stack)
            elif state in (_FIRST, _KEY):
                if state == _FIRST and char == ("}" if frame[1] else "]"):
                    pos = self._close(stack, pos + 1)
                elif frame[1]:
                    key = _STRING.match(text, pos)
                    if key is None:
                        return self._fail(stack)
                    frame[2], pos = _COLON, key.end()
                else:
                    frame[2] = _VALUE
            elif state == _COLON:
                if char != ":":
                    return self._fail(stack)
                frame[2], pos = _VALUE, pos + 1
            else:  # _VALUE
                pos = self._value(stack, frame, pos, char)
                if pos < 0:
                    return self._fail(stack)
        return self._end[start]

    def _value(self, stack: list[list[int]], frame: list[int], pos: int, char: str) -> int:
        if char in ("{", "["):
            known = self._end.get(pos)
            if known is None:
                return -1 if len(stack) >= MAX_DEPTH else self._open(stack, pos)
            if known < 0:
                return -1
            frame[2] = _AFTER_VALUE
            return known
        token = (_STRING if char == '"' else _SCALAR).match(self.text, pos)
        if token is None:
            return -1
        frame[2] = _AFTER_VALUE
        return token.end()

    def _open(self, stack: list[list[int]], pos: int) -> int:
        stack.append([pos, self.text[pos] == "{", _FIRST])
        return pos + 1

    def _close(self, stack: list[list[int]], end: int) -> int:
        frame = stack.pop()
        self._end[frame[0]] = end
        if stack:
            stack[-1][2] = _AFTER_VALUE
        return end

    def _fail(self, stack: list[list[int]]) -> int:
        for frame in stack:
            self._end[frame[0]] = -1
        stack.clear()
        return -1


_FIRST, _KEY, _COLON, _VALUE, _AFTER_VALUE = range(5)
