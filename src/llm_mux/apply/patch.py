"""Check every edit against the project before writing anything, then write atomically.

:func:`plan_edits` confines each path to the project root (:mod:`.confine`), matches each
edit in its named file (:mod:`.matching`; in sequence, on the evolving content) and
computes the final bytes of every touched file; it writes nothing. :func:`apply_plan`
snapshots the prior state, writes each file through a temp file and a rename, and rolls
itself back if anything fails on the way.
Files are handled as bytes: a BOM, the file's line endings and undecodable bytes survive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm_mux.apply.confine import confine, project_root, read_file
from llm_mux.apply.edits import Edit, FileDiff, Replace
from llm_mux.apply.matching import MatchError, apply_hunks, replace_once
from llm_mux.apply.rollback import (
    RollbackError,
    Snapshot,
    Transaction,
    atomic_write,
    take_snapshot,
)
from llm_mux.errors import ApplyError

_BOM = b"\xef\xbb\xbf"


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
            before = read_file(path, rel)
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
