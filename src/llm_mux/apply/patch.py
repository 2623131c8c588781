"""Check every edit against the project before writing anything, then write atomically.

:func:`plan_edits` confines each path to the project root, matches each edit in its named
file (in sequence, on the evolving content) and computes the final bytes of every touched
file; it writes nothing. :func:`apply_plan` snapshots the prior state, writes each file
through a temp file and a rename, and rolls itself back if anything fails on the way.
Files are handled as bytes: a BOM, the file's line endings and undecodable bytes survive.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_mux.apply.edits import Edit, FileDiff, Hunk, Replace
from llm_mux.apply.rollback import (
    RollbackError,
    Snapshot,
    Transaction,
    atomic_write,
    take_snapshot,
)
from llm_mux.errors import ApplyError

PROTECTED = (".git", ".llm-mux")
OFFSET_WINDOW = 50
_BOM = b"\xef\xbb\xbf"
_LINE_REST = re.compile(r"[ \t]*\r?\n")


class PathRefused(ApplyError):
    """A path escapes the project root or names a protected location."""


class MatchError(ApplyError):
    """An edit's old text (or a diff hunk) did not match exactly one place in its file."""

    def __init__(self, message: str, *, path: str, count: int, hint: str | None = None) -> None:
        self.path = path
        self.count = count
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class FileChange:
    """One file's planned change; ``after=None`` deletes it, ``before=None`` creates it."""

    path: Path
    rel: str
    before: bytes | None
    after: bytes | None


@dataclass(frozen=True)
class Plan:
    """Every change an apply will make, computed and checked; nothing written yet."""

    root: Path
    changes: tuple[FileChange, ...]

    @property
    def paths(self) -> list[str]:
        return [change.rel for change in self.changes]


# --- paths ----------------------------------------------------------------------------------


def project_root(root: Path) -> Path:
    """The real (symlink-free) project directory."""
    real = Path(os.path.realpath(root))
    if not real.is_dir():
        raise ApplyError(f"project directory {root} does not exist")
    return real


def _allowed(rel: str, allow_paths: Sequence[str]) -> bool:
    for pattern in allow_paths:
        prefix = pattern.strip().strip("/")
        if prefix and (rel == prefix or rel.startswith(prefix + "/")):
            return True
        if fnmatch.fnmatchcase(rel, pattern.strip()):
            return True
    return False


def _is_protected(rel: str) -> bool:
    return any(part.casefold() in PROTECTED for part in rel.split("/"))


def confine(root: Path, name: str, allow_paths: Sequence[str] = ()) -> tuple[Path, str]:
    """Resolve ``name`` (symlinks included, dangling ones too) to a path inside ``root``.

    Returns the real path and its ``/``-separated path relative to ``root``.
    """
    if not name or "\0" in name:
        raise PathRefused(f"invalid path {name!r}")
    if Path(name).is_absolute() or name.startswith(("~", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise PathRefused(f"absolute path refused: {name} (paths are relative to the project)")
    lexical = os.path.normpath(name)
    if lexical == ".." or lexical.startswith("../"):
        raise PathRefused(f"path escapes the project root: {name}")
    real = Path(os.path.realpath(root / lexical))
    if real == root:
        raise PathRefused(f"path names the project directory itself: {name}")
    if not real.is_relative_to(root):
        raise PathRefused(f"path resolves outside the project root: {name} -> {real}")
    rel = real.relative_to(root).as_posix()
    protected = _is_protected(lexical.replace(os.sep, "/")) or _is_protected(rel)
    if protected and not _allowed(rel, allow_paths):
        raise PathRefused(
            f"path is off-limits: {name} (.git/ and .llm-mux/ are protected)",
            hint="a step may open such paths with allow_paths",
        )
    return real, rel


def _read(path: Path, rel: str) -> bytes | None:
    """Current bytes of a regular file, or None when it does not exist."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        _check_parents(path, rel)
        return None
    except OSError as exc:
        raise ApplyError(f"cannot read {rel}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise PathRefused(f"{rel} is not a regular file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ApplyError(f"cannot read {rel}: {exc.strerror or exc}") from exc


def _check_parents(path: Path, rel: str) -> None:
    """A new file's nearest existing ancestor must be a directory."""
    parent = path.parent
    while not os.path.lexists(parent):
        parent = parent.parent
    if not parent.is_dir():
        raise PathRefused(f"cannot create {rel}: {parent.name} is not a directory")


# --- text -----------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[bool, str]:
    bom = data.startswith(_BOM)
    return bom, data[len(_BOM) if bom else 0 :].decode("utf-8", "surrogateescape")


def _encode(bom: bool, text: str, rel: str) -> bytes:
    try:
        body = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise ApplyError(f"the new text for {rel} cannot be written as UTF-8: {exc}") from exc
    return (_BOM if bom else b"") + body


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


# --- planning -------------------------------------------------------------------------------


@dataclass
class _Entry:
    path: Path
    rel: str
    before: bytes | None
    current: bytes | None


class _Planner:
    """The evolving content of every file the edits touch."""

    def __init__(self, root: Path, allow_paths: Sequence[str]) -> None:
        self.root = root
        self.allow_paths = allow_paths
        self.files: dict[Path, _Entry] = {}

    def entry(self, name: str) -> _Entry:
        path, rel = confine(self.root, name, self.allow_paths)
        if path not in self.files:
            before = _read(path, rel)
            self.files[path] = _Entry(path, rel, before, before)
        return self.files[path]

    def text_of(self, entry: _Entry, label: str) -> tuple[bool, str]:
        if entry.current is None:
            raise ApplyError(f"{label}: {entry.rel} does not exist")
        return _decode(entry.current)

    def create(self, entry: _Entry, content: str, label: str) -> None:
        if entry.current:
            raise ApplyError(
                f"{label}: cannot create {entry.rel}: it already exists and is not empty",
                hint="to change an existing file, give the old text to replace",
            )
        entry.current = _encode(False, content, entry.rel)

    def replace(self, edit: Replace, label: str) -> None:
        entry = self.entry(edit.path)
        if edit.old == "":
            self.create(entry, edit.new, label)
            return
        bom, text = self.text_of(entry, label)
        text = replace_once(text, edit.old, edit.new, label=label, rel=entry.rel)
        entry.current = _encode(bom, text, entry.rel)

    def diff(self, edit: FileDiff, label: str) -> None:
        if edit.kind == "create":
            target = self.entry(edit.path)
            content = apply_hunks("", edit.hunks, label=label, rel=target.rel)
            self.create(target, content, label)
            return
        source = self.entry(edit.old_path or edit.path)
        bom, text = self.text_of(source, label)
        text = apply_hunks(text, edit.hunks, label=label, rel=source.rel)
        target = self.entry(edit.path)
        if edit.kind == "delete":
            self.delete(source, text, label)
        elif edit.kind == "modify" or target is source:
            source.current = _encode(bom, text, source.rel)
        else:
            self.create(target, "", label)
            target.current, source.current = _encode(bom, text, target.rel), None

    def delete(self, entry: _Entry, remaining: str, label: str) -> None:
        if remaining.strip():
            raise MatchError(
                f"{label}: the diff deletes {entry.rel}, but the file has lines the diff"
                " does not remove",
                path=entry.rel,
                count=0,
            )
        entry.current = None

    def plan(self) -> Plan:
        changes = tuple(
            FileChange(e.path, e.rel, e.before, e.current)
            for e in self.files.values()
            if e.current != e.before
        )
        return Plan(self.root, changes)


def plan_edits(edits: Sequence[Edit], root: Path, *, allow_paths: Sequence[str] = ()) -> Plan:
    """Check all ``edits`` against the files under ``root`` and compute the result.

    Raises :class:`PathRefused`, :class:`MatchError` or :class:`ApplyError`; writes nothing.
    """
    planner = _Planner(project_root(root), allow_paths)
    for number, edit in enumerate(edits, 1):
        label = f"edit {number}"
        if isinstance(edit, Replace):
            planner.replace(edit, label)
        else:
            planner.diff(edit, label)
    return planner.plan()


# --- applying -------------------------------------------------------------------------------


def _make_parents(path: Path, root: Path, txn: Transaction) -> None:
    missing = []
    parent = path.parent
    while parent != root and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir()
        txn.record_dir(directory)


def _write(change: FileChange, mode: int | None, txn: Transaction) -> None:
    if change.after is None:
        change.path.unlink()
    else:
        _make_parents(change.path, txn.root, txn)
        atomic_write(change.path, change.after, mode)
    txn.applied.append(change.rel)


def _fail(txn: Transaction, exc: BaseException) -> BaseException:
    """Roll back after a failed write; the error to raise says what happened."""
    try:
        txn.rollback()
    except RollbackError as undo:
        return RollbackError(f"writing the edits failed ({exc}) and {undo.message}")
    if isinstance(exc, OSError):
        return ApplyError(f"writing the edits failed and was rolled back: {exc}")
    return exc


def _snapshot(change: FileChange) -> Snapshot:
    """The file's state now, which must still be what the plan was computed from."""
    try:
        snap = take_snapshot(change.path, change.rel)
    except OSError as exc:
        raise ApplyError(f"cannot read {change.rel}: {exc.strerror or exc}") from exc
    if snap.data != change.before:
        raise ApplyError(
            f"{change.rel} changed on disk since the edits were checked; nothing was written"
        )
    return snap


def apply_plan(plan: Plan) -> Transaction:
    """Write a plan; on any failure (Ctrl-C included) restore what was written and raise."""
    snapshots = [_snapshot(change) for change in plan.changes]
    txn = Transaction(plan.root)
    try:
        for change, snap in zip(plan.changes, snapshots, strict=True):
            txn.record(snap)
            _write(change, snap.mode, txn)
    except BaseException as exc:
        error = _fail(txn, exc)
        if error is exc:
            raise
        raise error from exc
    return txn


def apply_edits(
    edits: Sequence[Edit], root: Path, *, allow_paths: Sequence[str] = ()
) -> Transaction:
    """Plan and apply in one call."""
    return apply_plan(plan_edits(edits, root, allow_paths=allow_paths))
