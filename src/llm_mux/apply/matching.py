"""Matching: where an edit's old text, or a diff hunk, sits in a file, and the new text.

An old text must match exactly once; a whitespace-tolerant match is tried only when the
exact one fails and is unique. A hunk's old lines are compared exactly, then ignoring
trailing blanks, then with runs of blanks collapsed; the place nearest its line number
(within ``OFFSET_WINDOW`` lines) wins, else a unique one. Text keeps the file's own line
endings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from llm_mux.apply.edits import Hunk
from llm_mux.errors import ApplyError

OFFSET_WINDOW = 50
_LINE_REST = re.compile(r"[ \t]*\r?\n")


class MatchError(ApplyError):
    """An edit's old text (or a diff hunk) did not match exactly one place in its file."""

    def __init__(self, message: str, *, path: str, count: int, hint: str | None = None) -> None:
        self.path = path
        self.count = count
        super().__init__(message, hint=hint)


def line_ending(text: str) -> str:
    """The file's dominant line ending."""
    crlf = text.count("\r\n")
    return "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"


def to_eol(text: str, eol: str) -> str:
    text = text.replace("\r\n", "\n")
    return text if eol == "\n" else text.replace("\n", eol)


def _occurrences(text: str, needle: str) -> list[int]:
    spots: list[int] = []
    at = text.find(needle)
    while at >= 0:
        spots.append(at)
        at = text.find(needle, at + 1)
    return spots


# --- old/new replacement --------------------------------------------------------------------


def replace_once(text: str, old: str, new: str, *, label: str, rel: str) -> str:
    """Replace the single match of ``old``: exact (in the file's line endings), else tolerant."""
    eol = line_ending(text)
    new = to_eol(new, eol)
    for candidate in dict.fromkeys((to_eol(old, eol), old)):
        spots = _occurrences(text, candidate)
        if len(spots) == 1:
            return text[: spots[0]] + new + text[spots[0] + len(candidate) :]
        if spots:
            raise MatchError(
                f"{label}: the old text matched {len(spots)} times in {rel}; "
                "it must match exactly once",
                path=rel,
                count=len(spots),
                hint="include more surrounding lines in old so it names one place",
            )
    return _tolerant_replace(text, to_eol(old, eol), new, label=label, rel=rel)


def _tolerant_replace(text: str, old: str, new: str, *, label: str, rel: str) -> str:
    tokens = old.split()
    matches = []
    if tokens:
        pattern = re.compile(r"\s+".join(map(re.escape, tokens)))
        matches = list(pattern.finditer(text))
    if len(matches) == 1:
        return _splice(text, matches[0], old, new)
    tolerant = f" (a whitespace-tolerant match found {len(matches)} places)" if matches else ""
    first = old.strip().splitlines()[0][:120] if old.strip() else repr(old)
    raise MatchError(
        f"{label}: the old text matched 0 times in {rel}{tolerant}: {first}",
        path=rel,
        count=0,
        hint="old must be copied exactly from the current file",
    )


def _splice(text: str, match: re.Match[str], old: str, new: str) -> str:
    """Put ``new`` where a whitespace-tolerant match was, in the file's indentation."""
    lead = old[: len(old) - len(old.lstrip())]
    trail = old[len(old.rstrip()) :]
    core = new[len(lead) :] if new.startswith(lead) else new.lstrip(" \t")
    if trail and core.endswith(trail):
        core = core[: -len(trail)]
    start, end = match.start(), match.end()
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start]
    if not indent.strip():
        core = _reindent(core, lead.rpartition("\n")[2], indent)
        rest = _LINE_REST.match(text, end)
        if not core and rest:  # whole lines removed: their indentation and break go too
            start, end = line_start, rest.end()
    return text[:start] + core + text[end:]


def _reindent(core: str, old_indent: str, new_indent: str) -> str:
    if old_indent == new_indent:
        return core
    lines = core.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() and lines[i].startswith(old_indent):
            lines[i] = new_indent + lines[i][len(old_indent) :]
    return "\n".join(lines)


# --- diff hunks -----------------------------------------------------------------------------


def _split_lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def _bare(line: str) -> str:
    return line.removesuffix("\n").removesuffix("\r")


_COMPARATORS: tuple[Callable[[str], str], ...] = (
    lambda line: line,
    lambda line: line.rstrip(),
    lambda line: " ".join(line.split()),
)


def _candidates(lines: list[str], old: list[str], start: int, tier: int) -> list[int]:
    norm = _COMPARATORS[tier]
    want = [norm(line) for line in old]
    have = [norm(_bare(line)) for line in lines]
    last = len(lines) - len(old)
    first = want[0]
    return [
        p for p in range(start, last + 1) if have[p] == first and have[p : p + len(want)] == want
    ]


def _locate(lines: list[str], hunk: Hunk, expected: int, start: int, label: str, rel: str) -> int:
    """Where a hunk's old lines are: nearest to ``expected`` within the window, else unique."""
    old = hunk.old_lines
    if not old:
        return min(max(expected, start), len(lines))
    seen = 0
    for tier in range(len(_COMPARATORS)):
        spots = _candidates(lines, old, start, tier)
        near = [p for p in spots if abs(p - expected) <= OFFSET_WINDOW]
        if near:
            return min(near, key=lambda p: (abs(p - expected), p))
        if len(spots) == 1:
            return spots[0]
        seen = max(seen, len(spots))
    detail = f"its lines occur {seen} times, none near line {hunk.start}" if seen else "not found"
    raise MatchError(
        f"{label}: the hunk at line {hunk.start} matched 0 times in {rel} ({detail})",
        path=rel,
        count=seen,
        hint="the hunk's context and removed lines must be copied from the current file",
    )


def _replacement(matched: list[str], hunk: Hunk, eol: str, at_end: bool) -> list[str]:
    out: list[str] = []
    taken = iter(matched)
    for line in hunk.lines:
        if line.kind == " ":
            out.append(next(taken))
        elif line.kind == "-":
            next(taken)
        else:
            out.append(line.text + (eol if line.eol else ""))
    for i, text in enumerate(out):
        if not text.endswith("\n") and (i < len(out) - 1 or not at_end):
            out[i] = text + eol
    return out


def apply_hunks(text: str, hunks: Sequence[Hunk], *, label: str, rel: str) -> str:
    """Apply hunks in order with context matching and an offset search."""
    eol = line_ending(text)
    lines = _split_lines(text)
    offset = start = 0
    for hunk in hunks:
        size = len(hunk.old_lines)
        expected = max(hunk.start - (1 if size else 0), 0) + offset
        pos = _locate(lines, hunk, expected, start, label, rel)
        if pos and not lines[pos - 1].endswith("\n"):
            lines[pos - 1] += eol
        at_end = pos + size >= len(lines)
        new = _replacement(lines[pos : pos + size], hunk, eol, at_end)
        lines[pos : pos + size] = new
        offset += pos - expected + len(new) - size
        start = pos + len(new)
    return "".join(lines)
