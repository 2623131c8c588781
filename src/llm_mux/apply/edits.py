"""Turn an LLM's answer into a list of edits.

Three formats are understood, detected in this order so that the most explicit one wins:
JSON (the whole answer, then ```json fences), SEARCH/REPLACE blocks, unified diffs, and last
JSON embedded in prose. A format that is present but malformed is an error naming the
problem; an answer with no edits at all is an error showing what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llm_mux import answer_json
from llm_mux.answer_json import FENCE as _FENCE
from llm_mux.errors import ApplyError
from llm_mux.secrets import redact

EXCERPT_LIMIT = 500

EXPECTED_FORMATS = (
    "expected edits in one of these formats:\n"
    '  - JSON: {"edits": [{"path": "src/x.py", "old": "...", "new": "..."}]}, a list of such'
    " edits or one edit object, bare or in a ```json fence\n"
    "  - a unified diff (--- a/file, +++ b/file, @@ hunks), bare or in a ```diff fence\n"
    "  - SEARCH/REPLACE blocks: a line with the file path, then <<<<<<< SEARCH, the old"
    " lines, =======, the new lines, >>>>>>> REPLACE"
)


class EditParseError(ApplyError):
    """The answer holds no edits we understand, or a recognised format is malformed."""


@dataclass(frozen=True)
class Replace:
    """Replace the one occurrence of ``old`` in ``path`` by ``new``; ``old == ""`` creates."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class HunkLine:
    """One diff line: ``kind`` is ``" "``, ``"-"`` or ``"+"``; ``eol`` is False at a bare EOF."""

    kind: str
    text: str
    eol: bool = True


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` hunk; ``start`` is its 1-based line in the old file (0 for an empty file)."""

    start: int
    lines: tuple[HunkLine, ...]

    @property
    def old_lines(self) -> list[str]:
        return [line.text for line in self.lines if line.kind != "+"]


DiffKind = Literal["modify", "create", "delete", "rename"]


@dataclass(frozen=True)
class FileDiff:
    """The part of a unified diff for one file; ``old_path`` is set for a rename."""

    path: str
    hunks: tuple[Hunk, ...]
    kind: DiffKind = "modify"
    old_path: str | None = None


Edit = Replace | FileDiff


def parse_edits(text: str) -> list[Edit]:
    """Find the edits in ``text``; raise :class:`EditParseError` when there are none."""
    finders = (_whole_json, _fenced_json, _search_replace, _unified_diff, _embedded_json)
    for finder in finders:
        edits = finder(text)
        if edits is not None:
            return edits
    raise EditParseError(f"could not find edits in the output; {EXPECTED_FORMATS}\n{_got(text)}")


def edits_from_inline(items: Sequence[Mapping[str, object]]) -> list[Edit]:
    """Edits written in a workflow step's ``edits`` list (same keys as the JSON format)."""
    return [_replace_from(item, f"edit {n}") for n, item in enumerate(items, 1)]


def _got(text: str) -> str:
    body = text.strip()
    if not body:
        return "got: (empty output)"
    if len(body) > EXCERPT_LIMIT:
        body = body[: EXCERPT_LIMIT - 1] + "…"
    return f"got: {redact(body)}"


# --- JSON -----------------------------------------------------------------------------------


def _is_edit_object(value: object) -> bool:
    return (
        isinstance(value, dict)
        and ("path" in value or "file" in value)
        and ("old" in value or "new" in value)
    )


def _looks_like_edits(value: object) -> bool:
    if isinstance(value, dict):
        return isinstance(value.get("edits"), list | dict) or _is_edit_object(value)
    if isinstance(value, list):
        return bool(value) and all(_is_edit_object(item) for item in value)
    return False


def _edits_from_json(value: object) -> list[Edit]:
    if isinstance(value, dict) and "edits" in value:
        value = value["edits"]
    items = value if isinstance(value, list) else [value]
    return [_replace_from(item, f"edit {n}") for n, item in enumerate(items, 1)]


def _string_field(item: Mapping[str, object], keys: tuple[str, ...], label: str) -> str | None:
    for key in keys:
        if key in item:
            value = item[key]
            if not isinstance(value, str):
                raise EditParseError(f'{label}: "{key}" must be a string, got {value!r:.80}')
            return value
    return None


def _replace_from(item: object, label: str) -> Replace:
    if not isinstance(item, Mapping):
        raise EditParseError(f'{label}: expected an object with "path", "old" and "new"')
    path = _string_field(item, ("path", "file"), label)
    if not path:
        raise EditParseError(f'{label}: missing "path" (the file to edit)')
    new = _string_field(item, ("new",), label)
    if new is None:
        raise EditParseError(f'{label} ({path}): missing "new" (the replacement text)')
    old = _string_field(item, ("old",), label) or ""
    return Replace(path, old, new)


def _collect(values: Iterator[object]) -> list[Edit] | None:
    """Edits from every value that looks like edits, dropping exact repeats."""
    found: dict[Edit, None] = {}
    seen = False
    for value in values:
        if _looks_like_edits(value):
            seen = True
            found.update(dict.fromkeys(_edits_from_json(value)))
    return list(found) if seen else None


def _whole_json(text: str) -> list[Edit] | None:
    return _collect(iter([answer_json.loads(text)]))


def _fenced_json(text: str) -> list[Edit] | None:
    return _collect(answer_json.fenced(text))


def _embedded_json(text: str) -> list[Edit] | None:
    """Every edit-shaped value embedded in the text, inside other JSON too, left to right."""
    values = answer_json.embedded(text)
    return _collect(v for value in values for v in answer_json.nested(value, _looks_like_edits))


# --- SEARCH/REPLACE -------------------------------------------------------------------------

_SEARCH = re.compile(r"^<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^={7}\s*$")
_REPLACE = re.compile(r"^>{5,9} ?REPLACE\s*$")
_PATH_NOISE = "`*'\"():,"


def _search_replace(text: str) -> list[Edit] | None:
    lines = text.replace("\r\n", "\n").split("\n")
    if not any(_SEARCH.match(line) for line in lines):
        return None
    edits: list[Edit] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        if not _SEARCH.match(lines[i]):
            i += 1
            continue
        path = _path_before(lines, i) or path
        if path is None:
            raise EditParseError(
                f"SEARCH/REPLACE block {len(edits) + 1} has no file path on the line before it"
            )
        old, i = _section(lines, i + 1, _DIVIDER, "=======", path)
        new, i = _section(lines, i + 1, _REPLACE, ">>>>>>> REPLACE", path)
        edits.append(Replace(path, old, new))
        i += 1
    return edits


def _section(
    lines: list[str], start: int, end: re.Pattern[str], mark: str, path: str
) -> tuple[str, int]:
    for i in range(start, len(lines)):
        if end.match(lines[i]):
            body = lines[start:i]
            return ("\n".join(body) + "\n" if body else ""), i
    raise EditParseError(f"SEARCH/REPLACE block for {path} has no '{mark}' line")


def _path_before(lines: list[str], index: int) -> str | None:
    """The file path written on the nearest line above a block (skipping fences and blanks)."""
    for line in reversed(lines[:index]):
        if not line.strip() or _FENCE.match(line):
            continue
        if _SEARCH.match(line) or _DIVIDER.match(line) or _REPLACE.match(line):
            return None
        return _clean_path(line)
    return None


def _clean_path(line: str) -> str | None:
    text = line.strip().lstrip("#").strip().strip(_PATH_NOISE).rstrip(":").strip()
    text = re.sub(r"^(?:file(?:name)?|path)\s*:\s*", "", text, flags=re.IGNORECASE)
    if re.search(r"\s", text):
        tokens = [t.strip(_PATH_NOISE).rstrip(".;") for t in text.split()]
        tokens = [t for t in tokens if re.search(r"/|\w\.\w", t)]
        text = tokens[-1] if tokens else ""
    text = text.strip(_PATH_NOISE)
    return text if text and len(text) < 500 else None


# --- unified diff ---------------------------------------------------------------------------

_HUNK_HEADER = re.compile(r"^@@\s*(?:-(\d+)(?:,\d+)?)?\s*(?:\+(\d+)(?:,\d+)?)?\s*@@(.*)$")
_GIT_META = re.compile(
    r"^(?:diff --git |new file mode |deleted file mode |old mode |new mode |"
    r"similarity index |rename from |rename to |index )"
)
_BINARY = re.compile(r"^(?:Binary files .* differ|GIT binary patch)", re.MULTILINE)
_HUNK_LINE = (" ", "-", "+", "\\")


def _unified_diff(text: str) -> list[Edit] | None:
    cleaned = clean_diff(text)
    if cleaned is None:
        return None
    if _BINARY.search(text):
        raise EditParseError("binary diffs cannot be applied; send text edits instead")
    from unidiff.errors import UnidiffParseError
    from unidiff.patch import PatchSet

    try:
        patch = PatchSet(cleaned)
    except UnidiffParseError as exc:
        raise EditParseError(f"the unified diff could not be parsed: {exc}") from exc
    edits: list[Edit] = [_file_diff(patched) for patched in patch]
    return edits or None


def _is_file_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def clean_diff(text: str) -> str | None:
    """Keep only the diff's headers and hunks, with hunk lengths recounted.

    LLMs miscount hunk lengths, drop the space of blank context lines and leave out line
    numbers; ``unidiff`` trusts the counts and would silently drop lines, so we recount.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    in_file = has_hunks = False
    i = 0
    while i < len(lines):
        if _is_file_header(lines, i):
            out += lines[i : i + 2]
            in_file, i = True, i + 2
        elif in_file and (header := _HUNK_HEADER.match(lines[i])):
            body, i = _hunk_body(lines, i + 1)
            out += [_recount(header, body), *body]
            has_hunks = True
        else:
            if _GIT_META.match(lines[i]):
                out.append(lines[i])
            i += 1
    renamed = any(line.startswith("rename to ") for line in out)
    return "\n".join(out) + "\n" if has_hunks or renamed else None


def _hunk_body(lines: list[str], start: int) -> tuple[list[str], int]:
    i = start
    while i < len(lines) and (not lines[i] or lines[i][0] in _HUNK_LINE):
        if _is_file_header(lines, i):
            break
        i += 1
    body = [line or " " for line in lines[start:i]]
    while body and body[-1] == " " and not lines[start + len(body) - 1]:
        body.pop()  # blank lines after a hunk are a separator, not context
    return body, i


def _recount(header: re.Match[str], body: list[str]) -> str:
    old = sum(1 for line in body if line[0] in " -")
    new = sum(1 for line in body if line[0] in " +")
    old_start = int(header.group(1)) if header.group(1) else (1 if old else 0)
    new_start = int(header.group(2)) if header.group(2) else (1 if new else 0)
    return f"@@ -{old_start},{old} +{new_start},{new} @@{header.group(3)}"


_NULL = "/dev/null"


def _unquote(name: str) -> str:
    """Undo git's C-style quoting of unusual names (``"a/caf\\303\\251.txt"``)."""
    name = name.strip()
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    raw = name[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _strip_prefixes(source: str, target: str) -> tuple[str, str]:
    """Drop git's ``a/`` and ``b/`` prefixes (only where the diff uses them)."""
    if (source == _NULL or source.startswith("a/")) and (
        target == _NULL or target.startswith("b/")
    ):
        return (source if source == _NULL else source[2:]), (
            target if target == _NULL else target[2:]
        )
    if source.startswith("a/") and source[2:] == target:
        return target, target
    if target.startswith("b/") and target[2:] == source:
        return source, source
    return source, target


def _is_rename(patched: Any) -> bool:
    return any(str(line).startswith("rename to ") for line in patched.patch_info or ())


def _file_diff(patched: Any) -> FileDiff:
    source, target = _strip_prefixes(_unquote(patched.source_file), _unquote(patched.target_file))
    hunks = tuple(_hunk(h) for h in patched)
    if source == _NULL:
        return FileDiff(target, hunks, "create")
    if target == _NULL:
        return FileDiff(source, hunks, "delete")
    if source != target and _is_rename(patched):
        return FileDiff(target, hunks, "rename", old_path=source)
    return FileDiff(target, hunks)


def _hunk(hunk: Any) -> Hunk:
    lines: list[HunkLine] = []
    for line in hunk:
        if line.line_type == "\\":
            if lines:
                lines[-1] = HunkLine(lines[-1].kind, lines[-1].text, eol=False)
            continue
        lines.append(HunkLine(line.line_type, line.value.removesuffix("\n")))
    return Hunk(hunk.source_start, tuple(lines))
