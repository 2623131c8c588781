"""Record what files held before an apply, and put it back.

Rollback works from our own snapshot, never from git: restoring a file from the index would
destroy the user's uncommitted changes to it, and a file outside git has no index at all.
Only the files an apply touched and the directories it created are ever written or removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from llm_mux.errors import ApplyError


class RollbackError(ApplyError):
    """Some files could not be restored; the message lists each one and why."""


@dataclass(frozen=True)
class Snapshot:
    """A file's exact bytes and permission bits before an apply; ``data=None``: it was absent."""

    path: Path
    rel: str
    data: bytes | None
    mode: int | None


def take_snapshot(path: Path, rel: str) -> Snapshot:
    """Read ``path`` as it is now (a missing file is recorded as absent)."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return Snapshot(path, rel, None, None)
    with open(path, "rb") as fh:
        data = fh.read()
    return Snapshot(path, rel, data, stat.S_IMODE(st.st_mode))


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int | None) -> None:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``.

    ``mode=None`` makes a new file with the default permissions (umask applied).
    """
    tmp = path.with_name(f".{path.name[:80]}.{secrets.token_hex(4)}.llm-mux-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if mode is not None else 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def restore(snapshot: Snapshot) -> None:
    """Put one file back as the snapshot saw it (remove it if it did not exist)."""
    if snapshot.data is None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            snapshot.path.unlink()
        return
    snapshot.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(snapshot.path, snapshot.data, snapshot.mode)


class Transaction:
    """The record of one apply: prior state of each touched file and the directories made.

    ``applied`` lists the paths written (relative to the project root, ``/``-separated).
    ``kept_dirs`` lists created directories that rollback left in place because something
    else (e.g. files the verify command wrote) now lives in them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.applied: list[str] = []
        self.snapshots: list[Snapshot] = []
        self.created_dirs: list[Path] = []
        self.kept_dirs: list[str] = []
        self.rolled_back = False

    def record(self, snapshot: Snapshot) -> None:
        """Remember a file's prior state; called before the file is written."""
        self.snapshots.append(snapshot)

    def record_dir(self, directory: Path) -> None:
        self.created_dirs.append(directory)

    def rollback(self) -> None:
        """Restore every recorded file byte for byte and remove the directories we created.

        Every file is attempted even when one fails; failures raise :class:`RollbackError`.
        """
        if self.rolled_back:
            return
        problems = [problem for snap in reversed(self.snapshots) if (problem := _undo(snap))]
        problems += [p for d in reversed(self.created_dirs) if (p := self._remove_dir(d))]
        if problems:
            raise RollbackError(
                "rollback could not restore everything:\n" + "\n".join(problems),
                hint="the files listed above may hold the edited content; check them by hand",
            )
        self.rolled_back = True

    def _remove_dir(self, directory: Path) -> str | None:
        rel = directory.relative_to(self.root).as_posix()
        try:
            directory.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                return f"  - {rel}/: {exc.strerror or exc}"
            if rel not in self.kept_dirs:
                self.kept_dirs.append(rel)
        return None


def _undo(snapshot: Snapshot) -> str | None:
    try:
        restore(snapshot)
    except OSError as exc:
        return f"  - {snapshot.rel}: {exc.strerror or exc}"
    return None
