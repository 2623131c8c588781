"""Rollback restores exactly what was there, in and out of git, and touches nothing else."""

from __future__ import annotations

import difflib
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_mux.apply import (
    Replace,
    RollbackError,
    apply_edits,
    apply_plan,
    parse_edits,
    plan_edits,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=root,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode("utf-8", "replace")


def put(root: Path, rel: str, data: bytes | str, mode: int | None = None) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)


def state(root: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every entry outside .git with its bytes (or 'dir') and permission bits."""
    entries: dict[str, tuple[bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        entries[rel] = ("dir" if path.is_dir() else path.read_bytes(), mode)
    return entries


def git_view(root: Path) -> tuple[str, str, str]:
    return (
        git(root, "status", "--porcelain", "--untracked-files=all"),
        git(root, "diff"),
        git(root, "diff", "--cached"),
    )


def make_project(root: Path) -> None:
    put(root, "app.py", "def f():\n    return 1\n")
    put(root, "run.sh", "#!/bin/sh\necho hi\n", mode=0o755)
    put(root, "secret.cfg", "token = abc\n", mode=0o600)
    put(root, "win.txt", b"one\r\ntwo\r\nthree\r\n")
    put(root, "bom.txt", b"\xef\xbb\xbfvalue = 1\n")
    put(root, "other.txt", "other\n")
    put(root, "gone.txt", "to be deleted\n", mode=0o640)
    put(root, "pkg/mod.py", "X = 1\n")


def user_changes(root: Path) -> None:
    """Uncommitted, staged and untracked work that rollback must not disturb."""
    put(root, "app.py", "def f():\n    return 1\n\n# work in progress\n")
    put(root, "other.txt", "other, edited but not committed\n")
    put(root, "staged.txt", "staged\n")
    put(root, "notes/untracked.md", "my notes\n")


EDITS = [
    Replace("app.py", "return 1", "return 2"),
    Replace("run.sh", "echo hi", "echo bye"),
    Replace("secret.cfg", "abc", "xyz"),
    Replace("win.txt", "two\nthree\n", "2\n3\n"),
    Replace("bom.txt", "value = 1", "value = 2"),
    Replace("new/deep/file.txt", "", "created\n"),
    Replace("pkg/extra.py", "", "Y = 2\n"),
]
DELETE = "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-to be deleted\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    make_project(root)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    user_changes(root)
    git(root, "add", "staged.txt")
    return root


def test_rollback_in_git_repo_restores_everything_and_keeps_user_work(repo: Path) -> None:
    before, view = state(repo), git_view(repo)
    txn = apply_edits([*EDITS, *parse_edits(DELETE)], repo)
    assert (repo / "app.py").read_text() == "def f():\n    return 2\n\n# work in progress\n"
    assert (repo / "win.txt").read_bytes() == b"one\r\n2\r\n3\r\n"
    assert not (repo / "gone.txt").exists()
    assert state(repo) != before
    txn.rollback()
    assert state(repo) == before
    assert git_view(repo) == view


def test_rollback_in_plain_folder(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    make_project(root)
    user_changes(root)
    before = state(root)
    txn = apply_edits([*EDITS, *parse_edits(DELETE)], root)
    assert sorted(txn.applied) == sorted(
        [
            "app.py",
            "run.sh",
            "secret.cfg",
            "win.txt",
            "bom.txt",
            "new/deep/file.txt",
            "pkg/extra.py",
            "gone.txt",
        ]
    )
    assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "secret.cfg").stat().st_mode) == 0o600
    txn.rollback()
    assert state(root) == before
    assert not (root / "new").exists()
    assert (root / "pkg").is_dir()


def test_rollback_twice_is_harmless(tmp_path: Path) -> None:
    put(tmp_path, "a.txt", "a\n")
    txn = apply_edits([Replace("a.txt", "a", "b")], tmp_path)
    txn.rollback()
    put(tmp_path, "a.txt", "user edit after rollback\n")
    txn.rollback()
    assert (tmp_path / "a.txt").read_text() == "user edit after rollback\n"


def test_rollback_keeps_created_directory_holding_foreign_files(tmp_path: Path) -> None:
    txn = apply_edits([Replace("gen/out.txt", "", "x\n")], tmp_path)
    put(tmp_path, "gen/cache.bin", b"made by the verify command")
    txn.rollback()
    assert not (tmp_path / "gen/out.txt").exists()
    assert (tmp_path / "gen/cache.bin").read_bytes() == b"made by the verify command"
    assert txn.kept_dirs == ["gen"]


def test_rollback_restores_content_changed_after_apply(tmp_path: Path) -> None:
    put(tmp_path, "a.txt", "original\n", mode=0o755)
    txn = apply_edits([Replace("a.txt", "original", "edited")], tmp_path)
    put(tmp_path, "a.txt", "reformatted by verify\n", mode=0o600)
    txn.rollback()
    assert (tmp_path / "a.txt").read_text() == "original\n"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o755


def test_rollback_errors_are_raised_and_other_files_still_restored(tmp_path: Path) -> None:
    put(tmp_path, "a.txt", "a\n")
    txn = apply_edits([Replace("a.txt", "a", "b"), Replace("c.txt", "", "new\n")], tmp_path)
    (tmp_path / "c.txt").unlink()
    put(tmp_path, "c.txt/inside", "a directory now stands where the created file was")
    with pytest.raises(RollbackError, match=r"c\.txt"):
        txn.rollback()
    assert (tmp_path / "a.txt").read_text() == "a\n"
    assert not txn.rolled_back


def test_rolled_back_new_file_over_empty_file_is_empty_again(tmp_path: Path) -> None:
    put(tmp_path, "e.txt", "", mode=0o600)
    txn = apply_edits([Replace("e.txt", "", "content")], tmp_path)
    txn.rollback()
    assert (tmp_path / "e.txt").read_bytes() == b""
    assert stat.S_IMODE((tmp_path / "e.txt").stat().st_mode) == 0o600


# --- properties -----------------------------------------------------------------------------

_PIECES = st.sampled_from(["a", "b", "z", " ", "\t", "\n", "\r\n", "é", "∑", "{", "}", "\r"])
_TEXT = st.lists(_PIECES, max_size=60).map("".join)
_MODES = st.sampled_from([0o644, 0o600, 0o755, 0o444])


@settings(max_examples=60, deadline=None)
@given(
    before=_TEXT,
    after=_TEXT,
    new=_TEXT,
    bom=st.booleans(),
    junk=st.binary(max_size=4),
    mode=_MODES,
)
def test_apply_then_rollback_restores_original_bytes(
    before: str, after: str, new: str, bom: bool, junk: bytes, mode: int
) -> None:
    marker = "MARK"
    content = (b"\xef\xbb\xbf" if bom else b"") + f"{before}{marker}{after}".encode() + junk
    old = before[-3:] + marker + after[:3]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        put(root, "f.txt", content, mode=mode)
        txn = apply_plan(plan_edits([Replace("f.txt", old, new)], root))
        txn.rollback()
        assert (root / "f.txt").read_bytes() == content
        assert stat.S_IMODE((root / "f.txt").stat().st_mode) == mode
        assert [p.name for p in root.iterdir()] == ["f.txt"]


_LINES = st.lists(st.sampled_from(["alpha", "beta", "", "  x = 1", "\tgamma", "}"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(original=_LINES, replacement=_LINES, cut=st.tuples(st.integers(0, 30), st.integers(0, 8)))
def test_generated_diff_applies_and_rolls_back(
    original: list[str], replacement: list[str], cut: tuple[int, int]
) -> None:
    start = min(cut[0], len(original))
    target = original[:start] + replacement + original[start + cut[1] :]
    before = "".join(line + "\n" for line in original)
    expected = "".join(line + "\n" for line in target)
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            "a/f.txt",
            "b/f.txt",
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for eol in ("\n", "\r\n"):
            put(root, "f.txt", before.replace("\n", eol))
            if not diff:
                continue
            txn = apply_edits(parse_edits(diff), root)
            written = eol if original else "\n"  # an empty file has no line ending to follow
            assert (root / "f.txt").read_bytes() == expected.replace("\n", written).encode()
            txn.rollback()
            assert (root / "f.txt").read_bytes() == before.replace("\n", eol).encode()


_LF_TEXT = st.lists(st.sampled_from(["a", "b", " ", "\t", "\n", "é", "{"]), max_size=60).map(
    "".join
)


@settings(max_examples=60, deadline=None)
@given(before=_LF_TEXT, after=_LF_TEXT, new=_LF_TEXT, bom=st.booleans())
def test_applied_bytes_are_exactly_the_replacement(
    before: str, after: str, new: str, bom: bool
) -> None:
    prefix = b"\xef\xbb\xbf" if bom else b""
    text = f"{before}MARK{after}"
    old = before[-2:] + "MARK" + after[:2]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        put(root, "f.txt", prefix + text.encode())
        apply_edits([Replace("f.txt", old, new)], root)
        assert (root / "f.txt").read_bytes() == prefix + text.replace(old, new).encode()
