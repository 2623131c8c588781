"""Parsing edits from LLM answers: JSON, unified diffs and SEARCH/REPLACE blocks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_mux.apply import (
    EditParseError,
    FileDiff,
    HunkLine,
    Replace,
    edits_from_inline,
    parse_edits,
)
from llm_mux.errors import ApplyError

ONE = Replace("src/app.py", "return 1", "return 2")
ONE_JSON = '{"path": "src/app.py", "old": "return 1", "new": "return 2"}'


@pytest.mark.parametrize(
    "text",
    [
        ONE_JSON,
        f'{{"edits": [{ONE_JSON}]}}',
        f"[{ONE_JSON}]",
        '{"edits": [{"file": "src/app.py", "old": "return 1", "new": "return 2"}]}',
        f"```json\n{ONE_JSON}\n```",
        f'Here is the fix:\n\n```json\n{{"edits": [{ONE_JSON}]}}\n```\n\nHope it helps.',
        f"```\n[{ONE_JSON}]\n```",
        f"Sure. The edit is {ONE_JSON} which changes the return value.",
        f"  \n{ONE_JSON}\n  ",
    ],
)
def test_json_variants_give_the_same_edit(text: str) -> None:
    assert parse_edits(text) == [ONE]


def test_json_several_edits_keep_order() -> None:
    edits = [{"path": f"f{i}.txt", "old": f"a{i}", "new": f"b{i}"} for i in range(3)]
    assert parse_edits(json.dumps({"edits": edits})) == [
        Replace(f"f{i}.txt", f"a{i}", f"b{i}") for i in range(3)
    ]


def test_json_objects_in_separate_fences_are_all_taken() -> None:
    text = (
        'First:\n```json\n{"path": "a.txt", "old": "1", "new": "2"}\n```\n'
        'Second:\n```json\n{"path": "b.txt", "old": "3", "new": "4"}\n```\n'
    )
    assert parse_edits(text) == [Replace("a.txt", "1", "2"), Replace("b.txt", "3", "4")]


def test_json_with_raw_newlines_inside_strings() -> None:
    text = '{"path": "a.py", "old": "def f():\n    pass", "new": "def f():\n    return 1"}'
    assert parse_edits(text) == [Replace("a.py", "def f():\n    pass", "def f():\n    return 1")]


def test_json_embedded_skips_unrelated_objects() -> None:
    text = 'Config {"debug": true} is fine; apply {"path": "x.txt", "old": "", "new": "hi"} now.'
    assert parse_edits(text) == [Replace("x.txt", "", "hi")]


def test_json_missing_old_means_create() -> None:
    assert parse_edits('{"path": "n.txt", "new": "x"}') == [Replace("n.txt", "", "x")]


def test_json_empty_edits_list_is_no_edits() -> None:
    assert parse_edits('{"edits": []}') == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"edits": [{"path": 3, "old": "a", "new": "b"}]}', '"path" must be a string'),
        ('{"edits": [{"path": "a", "old": "a"}]}', 'missing "new"'),
        ('{"edits": [{"old": "a", "new": "b"}]}', 'missing "path"'),
        ('{"edits": ["just text"]}', "expected an object"),
        ('{"path": "a", "old": null, "new": "b"}', '"old" must be a string'),
    ],
)
def test_malformed_json_edits_name_the_problem(text: str, needle: str) -> None:
    with pytest.raises(EditParseError, match=needle):
        parse_edits(text)


def test_unparseable_output_shows_formats_and_excerpt() -> None:
    text = "I looked at the code and it seems fine to me. " * 40
    with pytest.raises(ApplyError) as info:
        parse_edits(text)
    message = str(info.value)
    assert "JSON" in message and "unified diff" in message and "SEARCH/REPLACE" in message
    got = message.split("got: ", 1)[1]
    assert got.startswith("I looked at the code")
    assert len(got) <= 500


def test_empty_output_is_an_error() -> None:
    with pytest.raises(EditParseError, match="empty output"):
        parse_edits("   \n")


def test_json_not_shaped_like_edits_is_unparseable() -> None:
    with pytest.raises(EditParseError, match="could not find edits"):
        parse_edits('{"answer": 42, "items": [1, 2]}')


def test_inline_edits() -> None:
    items = [{"path": "a.txt", "old": "x", "new": "y"}, {"file": "b.txt", "new": "z"}]
    assert edits_from_inline(items) == [Replace("a.txt", "x", "y"), Replace("b.txt", "", "z")]
    with pytest.raises(ApplyError, match="edit 2"):
        edits_from_inline([{"path": "a", "old": "x", "new": "y"}, {"path": "b"}])


# --- SEARCH/REPLACE -------------------------------------------------------------------------

SR_TWO = """I will change two files.

src/app.py
```python
<<<<<<< SEARCH
def f():
    return 1
=======
def f():
    return 2
>>>>>>> REPLACE
```

`docs/notes.md`:
```
<<<<<<< SEARCH
=======
# Notes
>>>>>>> REPLACE
```
"""


def test_search_replace_blocks() -> None:
    assert parse_edits(SR_TWO) == [
        Replace("src/app.py", "def f():\n    return 1\n", "def f():\n    return 2\n"),
        Replace("docs/notes.md", "", "# Notes\n"),
    ]


def test_search_replace_path_inside_fence_and_reused() -> None:
    text = (
        "```python\nlib/util.py\n<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\nb = 1\n=======\n>>>>>>> REPLACE\n```\n"
    )
    assert parse_edits(text) == [
        Replace("lib/util.py", "a = 1\n", "a = 2\n"),
        Replace("lib/util.py", "b = 1\n", ""),
    ]


def test_search_replace_crlf_answer() -> None:
    text = "x.txt\r\n<<<<<<< SEARCH\r\nold\r\n=======\r\nnew\r\n>>>>>>> REPLACE\r\n"
    assert parse_edits(text) == [Replace("x.txt", "old\n", "new\n")]


def test_search_replace_without_path_is_an_error() -> None:
    with pytest.raises(EditParseError, match="no file path"):
        parse_edits("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")


def test_search_replace_unterminated_is_an_error() -> None:
    with pytest.raises(EditParseError, match="REPLACE"):
        parse_edits("a.txt\n<<<<<<< SEARCH\na\n=======\nb\n")


# --- unified diffs --------------------------------------------------------------------------

MULTI_DIFF = """Here is the patch:

```diff
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,3 @@
 def f():
-    return 1
+    return 2

--- /dev/null
+++ b/docs/new.md
@@ -0,0 +1,2 @@
+# New
+text
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
```
"""


def test_unified_diff_with_new_and_deleted_files() -> None:
    edits = parse_edits(MULTI_DIFF)
    assert [(e.path, e.kind) for e in edits if isinstance(e, FileDiff)] == [
        ("src/app.py", "modify"),
        ("docs/new.md", "create"),
        ("old.txt", "delete"),
    ]
    app = edits[0]
    assert isinstance(app, FileDiff)
    assert [(line.kind, line.text) for line in app.hunks[0].lines] == [
        (" ", "def f():"),
        ("-", "    return 1"),
        ("+", "    return 2"),
    ]


def test_raw_diff_without_prefixes_and_with_wrong_counts() -> None:
    text = "--- notes.txt\n+++ notes.txt\n@@ -1,1 +1,1 @@\n-a\n+b\n+c\n"
    (edit,) = parse_edits(text)
    assert isinstance(edit, FileDiff)
    assert edit.path == "notes.txt"
    assert [line.text for line in edit.hunks[0].lines] == ["a", "b", "c"]


def test_diff_without_line_numbers() -> None:
    (edit,) = parse_edits("--- a/x\n+++ b/x\n@@ @@\n ctx\n-old\n+new\n")
    assert isinstance(edit, FileDiff)
    assert edit.hunks[0].old_lines == ["ctx", "old"]


def test_diff_no_newline_marker() -> None:
    text = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n"
    (edit,) = parse_edits(text)
    assert isinstance(edit, FileDiff)
    assert edit.hunks[0].lines == (HunkLine("-", "a", eol=False), HunkLine("+", "b"))


def test_diff_rename() -> None:
    text = (
        "diff --git a/old.py b/new.py\nsimilarity index 100%\n"
        "rename from old.py\nrename to new.py\n"
    )
    (edit,) = parse_edits(text)
    assert isinstance(edit, FileDiff)
    assert (edit.kind, edit.old_path, edit.path) == ("rename", "old.py", "new.py")


def test_binary_diff_is_refused() -> None:
    text = (
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
        "Binary files a/y and b/y differ\n"
    )
    with pytest.raises(EditParseError, match="binary"):
        parse_edits(text)


@given(st.text(max_size=300))
def test_parse_never_crashes_with_a_foreign_error(text: str) -> None:
    try:
        parse_edits(text)
    except ApplyError:
        pass


_FRAGMENTS = [
    "--- a/x",
    "+++ b/x",
    "--- /dev/null",
    "+++ /dev/null",
    "@@ -1,2 +1,2 @@",
    "@@ @@",
    "@@ -0,0 +1 @@",
    " ctx",
    "-old",
    "+new",
    "",
    "\\ No newline at end of file",
    "<<<<<<< SEARCH",
    "=======",
    ">>>>>>> REPLACE",
    "```",
    "```json",
    "```diff",
    "src/a.py",
    '{"path": "a", "old": "x", "new": "y"}',
    '{"edits": [',
    "]}",
    "rename from a",
    "rename to b",
    "diff --git a/x b/x",
]


@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=14))
def test_parse_of_format_fragments_raises_only_apply_errors(lines: list[str]) -> None:
    try:
        edits = parse_edits("\n".join(lines))
    except ApplyError:
        return
    assert all(isinstance(edit, Replace | FileDiff) for edit in edits)


def test_diff_with_different_names_but_no_rename_edits_the_target() -> None:
    (edit,) = parse_edits("--- x.py.orig\n+++ x.py\n@@ -1 +1 @@\n-a\n+b\n")
    assert isinstance(edit, FileDiff)
    assert (edit.path, edit.kind) == ("x.py", "modify")


def test_diff_quoted_names() -> None:
    text = '--- "a/caf\\303\\251.txt"\n+++ "b/caf\\303\\251.txt"\n@@ -1 +1 @@\n-a\n+b\n'
    (edit,) = parse_edits(text)
    assert isinstance(edit, FileDiff)
    assert edit.path == "café.txt"


def test_json_edits_holding_one_object() -> None:
    assert parse_edits(f'{{"edits": {ONE_JSON}}}') == [ONE]
