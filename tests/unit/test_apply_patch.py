"""Planning and applying edits: matching, confinement, atomicity, line endings, BOM, modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llm_mux.apply import (
    MatchError,
    PathRefused,
    Replace,
    apply_edits,
    apply_plan,
    parse_edits,
    plan_edits,
)
from llm_mux.errors import ApplyError


def put(root: Path, rel: str, data: bytes | str, mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes (to prove nothing else changed)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    return project


# --- replace --------------------------------------------------------------------------------


def test_replace_once(root: Path) -> None:
    put(root, "a.py", "x = 1\ny = 2\n")
    txn = apply_edits([Replace("a.py", "y = 2", "y = 3")], root)
    assert (root / "a.py").read_text() == "x = 1\ny = 3\n"
    assert txn.applied == ["a.py"]


def test_several_edits_to_one_file_apply_in_sequence(root: Path) -> None:
    put(root, "a.txt", "one\n")
    edits = [Replace("a.txt", "one", "two"), Replace("a.txt", "two", "three")]
    txn = apply_edits(edits, root)
    assert (root / "a.txt").read_text() == "three\n"
    assert txn.applied == ["a.txt"]


def test_missing_match_names_file_and_zero(root: Path) -> None:
    put(root, "a.txt", "hello\n")
    with pytest.raises(MatchError, match=r"matched 0 times in a\.txt") as info:
        plan_edits([Replace("a.txt", "goodbye", "x")], root)
    assert info.value.count == 0 and info.value.path == "a.txt"


def test_ambiguous_match_names_file_and_count(root: Path) -> None:
    put(root, "a.txt", "x = 1\nx = 1\nx = 1\n")
    with pytest.raises(MatchError, match=r"matched 3 times in a\.txt") as info:
        plan_edits([Replace("a.txt", "x = 1", "x = 2")], root)
    assert info.value.count == 3


def test_overlapping_matches_are_ambiguous(root: Path) -> None:
    put(root, "a.txt", "aaa")
    with pytest.raises(MatchError, match="2 times"):
        plan_edits([Replace("a.txt", "aa", "b")], root)


def test_whitespace_tolerant_fallback_keeps_file_indentation(root: Path) -> None:
    put(root, "a.py", "class A:\n    def f(self):\n        return 1\n")
    old = "def f(self):\n    return 1\n"
    new = "def f(self):\n    return 2\n"
    apply_edits([Replace("a.py", old, new)], root)
    assert (root / "a.py").read_text() == "class A:\n    def f(self):\n        return 2\n"


def test_whitespace_tolerant_only_when_unique(root: Path) -> None:
    put(root, "a.py", "if a:\n    go( 1 )\nif b:\n    go(  1 )\n")
    with pytest.raises(MatchError, match="whitespace-tolerant match found 2 places"):
        plan_edits([Replace("a.py", "go(\t1\t)", "stop()")], root)


def test_exact_match_wins_over_tolerant(root: Path) -> None:
    put(root, "a.txt", "a  b\na b\n")
    apply_edits([Replace("a.txt", "a b", "X")], root)
    assert (root / "a.txt").read_text() == "a  b\nX\n"


def test_failed_edit_is_never_tried_on_another_file(root: Path) -> None:
    put(root, "a.txt", "alpha\n")
    put(root, "b.txt", "needle\n")
    with pytest.raises(MatchError, match=r"a\.txt"):
        apply_edits([Replace("a.txt", "needle", "pin")], root)
    assert (root / "b.txt").read_text() == "needle\n"


def test_missing_file_is_an_error(root: Path) -> None:
    with pytest.raises(ApplyError, match="does not exist"):
        plan_edits([Replace("nope.txt", "a", "b")], root)


# --- create and delete ----------------------------------------------------------------------


def test_create_file_in_new_directories(root: Path) -> None:
    txn = apply_edits([Replace("a/b/c.txt", "", "hi\n")], root)
    assert (root / "a/b/c.txt").read_text() == "hi\n"
    assert txn.applied == ["a/b/c.txt"]
    assert [d.relative_to(root).as_posix() for d in txn.created_dirs] == ["a", "a/b"]


def test_create_refuses_existing_non_empty_file(root: Path) -> None:
    put(root, "a.txt", "keep me\n")
    with pytest.raises(ApplyError, match="already exists and is not empty"):
        apply_edits([Replace("a.txt", "", "new\n")], root)
    assert (root / "a.txt").read_text() == "keep me\n"


def test_create_fills_existing_empty_file(root: Path) -> None:
    put(root, "a.txt", "", mode=0o640)
    apply_edits([Replace("a.txt", "", "content\n")], root)
    assert (root / "a.txt").read_text() == "content\n"
    assert stat.S_IMODE((root / "a.txt").stat().st_mode) == 0o640


def test_create_under_a_file_is_refused(root: Path) -> None:
    put(root, "plain", "x")
    with pytest.raises(PathRefused, match="not a directory"):
        plan_edits([Replace("plain/sub.txt", "", "x")], root)


def test_directory_target_is_refused(root: Path) -> None:
    (root / "dir").mkdir()
    with pytest.raises(PathRefused, match="not a regular file"):
        plan_edits([Replace("dir", "", "x")], root)


# --- confinement ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../outside.txt", "sub/../../outside.txt", "/etc/passwd", "~/x.txt", "", "a\0b"],
)
def test_escaping_paths_are_refused(root: Path, name: str) -> None:
    with pytest.raises(PathRefused):
        plan_edits([Replace(name, "", "x")], root)


def test_absolute_path_inside_root_is_refused_too(root: Path) -> None:
    put(root, "a.txt", "x")
    with pytest.raises(PathRefused, match="absolute"):
        plan_edits([Replace(str(root / "a.txt"), "x", "y")], root)


def test_symlink_pointing_out_is_refused(root: Path, tmp_path: Path) -> None:
    outside = put(tmp_path, "secret.txt", "secret\n")
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(PathRefused, match="outside the project root"):
        apply_edits([Replace("link.txt", "secret", "leaked")], root)
    assert outside.read_text() == "secret\n"


def test_dangling_symlink_pointing_out_is_refused(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "created-outside.txt"
    (root / "dangling").symlink_to(target)
    with pytest.raises(PathRefused):
        apply_edits([Replace("dangling", "", "x")], root)
    assert not target.exists()


def test_symlinked_directory_pointing_out_is_refused(root: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (root / "out").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(PathRefused):
        apply_edits([Replace("out/new.txt", "", "x")], root)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_symlink_inside_root_edits_its_target(root: Path) -> None:
    put(root, "real.txt", "a\n")
    (root / "alias.txt").symlink_to("real.txt")
    txn = apply_edits([Replace("alias.txt", "a", "b")], root)
    assert (root / "real.txt").read_text() == "b\n"
    assert (root / "alias.txt").is_symlink()
    assert txn.applied == ["real.txt"]


@pytest.mark.parametrize(
    "name", [".git/config", ".git/hooks/pre-commit", ".llm-mux/workflows/x.toml", "sub/.git/x"]
)
def test_protected_paths_are_refused(root: Path, name: str) -> None:
    put(root, ".git/config", "[core]\n")
    with pytest.raises(PathRefused, match="off-limits"):
        plan_edits([Replace(name, "", "x")], root)
    assert (root / ".git/config").read_text() == "[core]\n"


def test_symlink_into_git_dir_is_refused(root: Path) -> None:
    put(root, ".git/config", "[core]\n")
    (root / "cfg").symlink_to(".git/config")
    with pytest.raises(PathRefused, match="off-limits"):
        plan_edits([Replace("cfg", "[core]", "[evil]")], root)


def test_allow_paths_opens_a_protected_path(root: Path) -> None:
    apply_edits([Replace(".llm-mux/notes.md", "", "n\n")], root, allow_paths=[".llm-mux/"])
    assert (root / ".llm-mux/notes.md").read_text() == "n\n"
    with pytest.raises(PathRefused):
        plan_edits([Replace(".git/config", "", "x")], root, allow_paths=[".llm-mux/"])


# --- atomicity ------------------------------------------------------------------------------


def test_second_bad_edit_leaves_first_file_untouched(root: Path) -> None:
    put(root, "a.txt", b"first\r\nfile\n")
    put(root, "b.txt", "second\n")
    before = tree(root)
    with pytest.raises(MatchError, match=r"edit 2.*b\.txt"):
        apply_edits([Replace("a.txt", "first", "1st"), Replace("b.txt", "nope", "x")], root)
    assert tree(root) == before


def test_failure_while_writing_rolls_back_what_was_written(root: Path) -> None:
    put(root, "a.txt", "alpha\n")
    edits = [
        Replace("a.txt", "alpha", "beta"),
        Replace("x/y/new.txt", "", "new\n"),
        Replace("blocked/z.txt", "", "z\n"),
    ]
    plan = plan_edits(edits, root)
    put(root, "blocked", "a file where a directory was expected\n")
    before = tree(root)
    with pytest.raises(ApplyError, match="rolled back"):
        apply_plan(plan)
    assert tree(root) == before
    assert not (root / "x").exists()


def test_stale_plan_writes_nothing(root: Path) -> None:
    put(root, "a.txt", "alpha\n")
    put(root, "b.txt", "beta\n")
    plan = plan_edits([Replace("a.txt", "alpha", "A"), Replace("b.txt", "beta", "B")], root)
    put(root, "b.txt", "changed by someone\n")
    with pytest.raises(ApplyError, match="changed on disk"):
        apply_plan(plan)
    assert (root / "a.txt").read_text() == "alpha\n"


def test_no_temp_files_are_left(root: Path) -> None:
    put(root, "a.txt", "a\n")
    apply_edits([Replace("a.txt", "a", "b"), Replace("n/new.txt", "", "x")], root)
    assert sorted(tree(root)) == ["a.txt", "n/new.txt"]


# --- line endings, BOM, modes ---------------------------------------------------------------


def test_lf_edit_of_crlf_file_stays_crlf(root: Path) -> None:
    put(root, "w.txt", b"one\r\ntwo\r\nthree\r\n")
    apply_edits([Replace("w.txt", "one\ntwo\n", "uno\ndos\nextra\n")], root)
    assert (root / "w.txt").read_bytes() == b"uno\r\ndos\r\nextra\r\nthree\r\n"


def test_crlf_edit_of_lf_file_stays_lf(root: Path) -> None:
    put(root, "u.txt", b"one\ntwo\n")
    apply_edits([Replace("u.txt", "one\r\ntwo", "1\r\n2")], root)
    assert (root / "u.txt").read_bytes() == b"1\n2\n"


def test_bom_is_kept(root: Path) -> None:
    put(root, "b.txt", b"\xef\xbb\xbfname = 1\n")
    apply_edits([Replace("b.txt", "name = 1", "name = 2")], root)
    assert (root / "b.txt").read_bytes() == b"\xef\xbb\xbfname = 2\n"


def test_undecodable_bytes_elsewhere_survive(root: Path) -> None:
    put(root, "m.txt", b"\xff\xfe latin \xe9\nkey = 1\n")
    apply_edits([Replace("m.txt", "key = 1", "key = 2")], root)
    assert (root / "m.txt").read_bytes() == b"\xff\xfe latin \xe9\nkey = 2\n"


@pytest.mark.parametrize("mode", [0o755, 0o600, 0o444])
def test_mode_bits_are_kept(root: Path, mode: int) -> None:
    put(root, "s.sh", "#!/bin/sh\necho hi\n", mode=mode)
    apply_edits([Replace("s.sh", "echo hi", "echo bye")], root)
    assert stat.S_IMODE((root / "s.sh").stat().st_mode) == mode


def test_new_file_gets_default_mode(root: Path) -> None:
    umask = os.umask(0o022)
    try:
        apply_edits([Replace("n.txt", "", "x")], root)
    finally:
        os.umask(umask)
    assert stat.S_IMODE((root / "n.txt").stat().st_mode) == 0o644


# --- diffs ----------------------------------------------------------------------------------

BODY = "".join(f"line {i}\n" for i in range(1, 101))


def test_diff_hunk_found_despite_wrong_line_numbers(root: Path) -> None:
    put(root, "f.txt", BODY)
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -20,3 +20,3 @@\n line 40\n-line 41\n+LINE 41\n line 42\n"
    apply_plan(plan_edits(parse_edits(diff), root))
    assert (root / "f.txt").read_text() == BODY.replace("line 41\n", "LINE 41\n")


def test_diff_two_hunks_and_multiple_files(root: Path) -> None:
    put(root, "f.txt", BODY)
    put(root, "g.txt", "keep\ndrop\n")
    diff = (
        "--- a/f.txt\n+++ b/f.txt\n"
        "@@ -2,2 +2,3 @@\n line 2\n+inserted\n line 3\n"
        "@@ -90,2 +91,1 @@\n line 90\n-line 91\n"
        "--- a/g.txt\n+++ b/g.txt\n@@ -1,2 +1,1 @@\n keep\n-drop\n"
    )
    txn = apply_edits(parse_edits(diff), root)
    expected = BODY.replace("line 2\n", "line 2\ninserted\n").replace("line 91\n", "")
    assert (root / "f.txt").read_text() == expected
    assert (root / "g.txt").read_text() == "keep\n"
    assert txn.applied == ["f.txt", "g.txt"]


def test_diff_new_and_deleted_files(root: Path) -> None:
    put(root, "old.txt", "bye\n")
    diff = (
        "--- /dev/null\n+++ b/pkg/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n"
        "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
    )
    txn = apply_edits(parse_edits(diff), root)
    assert (root / "pkg/new.txt").read_text() == "hello\nworld\n"
    assert not (root / "old.txt").exists()
    assert txn.applied == ["pkg/new.txt", "old.txt"]


def test_diff_deleting_a_file_with_other_content_is_refused(root: Path) -> None:
    put(root, "old.txt", "bye\nmore\n")
    diff = "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
    with pytest.raises(MatchError, match="does not remove"):
        plan_edits(parse_edits(diff), root)


def test_diff_new_file_over_existing_file_is_refused(root: Path) -> None:
    put(root, "n.txt", "existing\n")
    diff = "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1 @@\n+new\n"
    with pytest.raises(ApplyError, match="already exists"):
        plan_edits(parse_edits(diff), root)


def test_diff_mismatched_context_is_an_error(root: Path) -> None:
    put(root, "f.txt", "a\nb\nc\n")
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -1,2 +1,2 @@\n x\n-b\n+B\n"
    with pytest.raises(MatchError, match=r"matched 0 times in f\.txt"):
        plan_edits(parse_edits(diff), root)


def test_diff_on_crlf_file_stays_crlf(root: Path) -> None:
    put(root, "w.txt", b"a\r\nb\r\nc\r\n")
    diff = "--- a/w.txt\n+++ b/w.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    apply_edits(parse_edits(diff), root)
    assert (root / "w.txt").read_bytes() == b"a\r\nB\r\nc\r\n"


def test_diff_appending_to_file_without_final_newline(root: Path) -> None:
    put(root, "f.txt", "a\nb")
    diff = "--- a/f.txt\n+++ b/f.txt\n@@ -2 +2,2 @@\n b\n+c\n"
    apply_edits(parse_edits(diff), root)
    assert (root / "f.txt").read_text() == "a\nb\nc\n"


def test_diff_whitespace_tolerant_context(root: Path) -> None:
    put(root, "f.py", "def f():\n\treturn 1   \n")
    diff = "--- a/f.py\n+++ b/f.py\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+\treturn 2\n"
    apply_edits(parse_edits(diff), root)
    assert (root / "f.py").read_text() == "def f():\n\treturn 2\n"


def test_diff_rename(root: Path) -> None:
    put(root, "old.py", "x = 1\n", mode=0o755)
    diff = (
        "diff --git a/old.py b/new.py\nsimilarity index 100%\n"
        "rename from old.py\nrename to new.py\n"
    )
    txn = apply_edits(parse_edits(diff), root)
    assert not (root / "old.py").exists()
    assert (root / "new.py").read_text() == "x = 1\n"
    assert sorted(txn.applied) == ["new.py", "old.py"]


def test_search_replace_end_to_end(root: Path) -> None:
    put(root, "src/app.py", "def f():\n    return 1\n")
    text = "src/app.py\n<<<<<<< SEARCH\n    return 1\n=======\n    return 2\n>>>>>>> REPLACE\n"
    apply_edits(parse_edits(text), root)
    assert (root / "src/app.py").read_text() == "def f():\n    return 2\n"


def test_whitespace_tolerant_deletion_removes_whole_lines(root: Path) -> None:
    put(root, "a.py", "def f():\n    log( 'x' )\n    return 1\n")
    apply_edits([Replace("a.py", "log(  'x' )\n", "")], root)
    assert (root / "a.py").read_text() == "def f():\n    return 1\n"


def test_dangling_symlink_inside_root_creates_its_target(root: Path) -> None:
    (root / "link.txt").symlink_to("sub/target.txt")
    txn = apply_edits([Replace("link.txt", "", "made\n")], root)
    assert (root / "sub/target.txt").read_text() == "made\n"
    assert txn.applied == ["sub/target.txt"]
    txn.rollback()
    assert not (root / "sub").exists()
    assert (root / "link.txt").is_symlink()


def test_edit_that_changes_nothing_writes_nothing(root: Path) -> None:
    put(root, "a.txt", "same\n")
    plan = plan_edits([Replace("a.txt", "same", "same")], root)
    assert plan.changes == ()
    assert apply_plan(plan).applied == []
