"""Confinement: every path an edit names must stay inside the project root.

A path is resolved (symlinks too, a dangling one included) before it is checked; absolute
paths, ``..`` escapes and the protected ``.git/`` and ``.llm-mux/`` are refused unless a
step's ``allow_paths`` opens them.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from llm_mux.errors import ApplyError

PROTECTED = (".git", ".llm-mux")


class PathRefused(ApplyError):
    """A path escapes the project root or names a protected location."""


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


def read_file(path: Path, rel: str) -> bytes | None:
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
