"""Text helpers of the shell lexer: backtick bodies and here-document delimiters."""

from __future__ import annotations

import re


def unescape_backticks(
    text: str, start: int, stop: int, origin: list[int], in_double: bool
) -> tuple[str, list[int]]:
    """The command inside backticks: ``\\$``, ``\\``` and ``\\\\`` (and ``\\"``) unescaped."""
    escapable = '$`\\"' if in_double else "$`\\"
    chars: list[str] = []
    mapping: list[int] = []
    j = start
    while j < stop:
        if text[j] == "\\" and j + 1 < stop and text[j + 1] in escapable:
            chars.append(text[j + 1])
            mapping.append(origin[j])
            j += 2
        else:
            chars.append(text[j])
            mapping.append(origin[j])
            j += 1
    mapping.append(origin[stop])
    return "".join(chars), mapping


def unquote_delimiter(part: str) -> str:
    if part.startswith("'"):
        return part[1:].removesuffix("'")
    if part.startswith('"'):
        inner = part[1:].removesuffix('"')
        return re.sub(r'\\([$`"\\\n])', r"\1", inner)
    if part.startswith("\\"):
        return part[1:]
    return part


def find_terminator(
    text: str, start: int, end: int, delimiter: str, strip_tabs: bool
) -> tuple[int, tuple[int, int] | None]:
    """Where the body ends, and the terminator line's span (None when it runs to the end)."""
    pos = start
    while pos < end:
        newline = text.find("\n", pos, end)
        line_end = end if newline < 0 else newline
        line = text[pos:line_end]
        if (line.lstrip("\t") if strip_tabs else line) == delimiter:
            return pos, (pos, line_end)
        pos = line_end + 1
    return end, None


def fresh_delimiter(body: str, strip_tabs: bool) -> str:
    lines = {line.lstrip("\t") if strip_tabs else line for line in body.split("\n")}
    candidate, n = "LLM_MUX_EOF", 1
    while candidate in lines:
        n += 1
        candidate = f"LLM_MUX_EOF_{n}"
    return candidate
