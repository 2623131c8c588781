"""Injection-safe rendering of shell ``run`` templates.

Each evaluated ``{{ }}`` becomes an unforgeable token (random per render) while its value is
recorded apart. The rendered text, which now holds only the author's literal shell and the
tokens, is lexed to learn each token's quoting context; each token is then replaced by a
reference to an environment variable quoted for that context (GitHub Actions' advice against
script injection). Values therefore never pass through the shell's parser: whatever
characters they hold, the command receives exactly them. Values too large for the
environment are spilled to private files that the script reads back exactly.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from llm_mux.errors import TemplateError
from llm_mux.templates.budget import limited
from llm_mux.templates.environment import (
    RECORDER,
    Escaped,
    Location,
    compile_template,
    failure,
    line_of,
    render_with,
)
from llm_mux.templates.shell_lexer import SLOT, Edit, Refused, Scan, Site, Where, scan

MAX_INLINE_SCRIPT = 100 * 1024  # bytes of script passed as the ``-c`` argument
MAX_ENV_VALUE = 64 * 1024  # Linux caps one environment string at 128 KiB
MAX_ENV_TOTAL = 1024 * 1024  # leaves room under ARG_MAX for the inherited environment
PROBE_S = 0.2  # the static check renders with stand-ins for at most this long (no verdict after)
VALUE_PREFIX = "LLM_MUX_V"
FILE_PREFIX = "LLM_MUX_F"

_REFUSAL_HINT = (
    "a value can stand in a bare word, in '…' or \"…\", in a here-document, in a comment or "
    "inside $(…)/backticks; assign it to a variable there (v={{ … }}) and use $v"
)


@dataclass
class ShellScript:
    """A rendered shell script: the text for ``sh``, and the values it reads.

    ``env`` must be added to the child's environment; ``files`` are private temporary files
    (spilled values, a large script) that the caller removes with :meth:`cleanup`.
    """

    script: str
    env: dict[str, str] = field(default_factory=dict, repr=False)
    files: list[Path] = field(default_factory=list)
    spill_dir: Path | None = None
    _script_file: Path | None = field(default=None, repr=False, init=False)

    def argv(self, shell: str = "sh") -> tuple[str, ...]:
        """``(shell, "-c", script)``, or ``(shell, file)`` when the script is too large."""
        if len(_encode(self.script)) <= MAX_INLINE_SCRIPT:
            if self.script.startswith(("-", "+")):  # else the shell reads it as options
                return (shell, "-c", "--", self.script)
            return (shell, "-c", self.script)
        if self._script_file is None:
            self._script_file = _private_file(_encode(self.script), self.spill_dir, ".sh")
            self.files.append(self._script_file)
        return (shell, str(self._script_file))

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: our environment) with the values' variables added."""
        merged = dict(os.environ if base is None else base)
        merged.update(self.env)
        return merged

    def cleanup(self) -> None:
        """Remove the temporary files; safe to call more than once."""
        for path in self.files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        self.files.clear()
        self._script_file = None

    def __enter__(self) -> ShellScript:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


class _Recorder:
    """Records the value of each ``{{ }}`` of one render and hands out its token.

    A ``{{ x | shell_escape }}`` records its quoted text as the value and keeps the raw value
    apart (``raw``): a bare-word site uses the raw value, every other site the quoted text.
    """

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(10)
        self.values: list[str] = []
        self.raw: dict[int, str] = {}
        self.locations: list[Location] = []
        self.token = re.compile(f"LLMMUX{self.nonce}P([0-9]+)Q")
        self.trace = re.compile(re.escape(self.nonce), re.IGNORECASE)

    def __call__(self, value: str, location: Location) -> str:
        if isinstance(value, Escaped):
            raw = self.expand(value.raw) if self.trace.search(value.raw) else value.raw
            self.raw[len(self.values)] = raw
            value = shlex.quote(raw)
        elif self.trace.search(value):
            value = self.expand(value)
        self.values.append(value)
        self.locations.append(location)
        return f"LLMMUX{self.nonce}P{len(self.values) - 1}Q"

    def expand(self, text: str) -> str:
        """Text captured by ``{% set %}``/macros, with its tokens replaced by their values."""
        expanded = self.token.sub(lambda m: self.values[int(m.group(1))], text)
        if self.trace.search(expanded):
            raise _changed_value()
        return expanded


def _changed_value() -> TemplateError:
    return TemplateError(
        "a {{ }} value was changed after it was output (by a {% filter %} block or a filter "
        "on a {% set %} block); apply the filter inside the {{ }} instead"
    )


def prepare_shell(
    template: str,
    context: Mapping[str, Any],
    *,
    where: str = "",
    spill_dir: Path | None = None,
) -> ShellScript:
    """Render a shell template so each ``{{ }}`` reaches the command as exactly its value."""
    text, recorder = _render(template, context, where, "shell")
    slotted, indexes = _to_slots(text, recorder, where)
    _check_values(recorder, indexes, where)
    found = _scan(slotted, indexes, recorder, where)
    pairs = zip(found.sites, indexes, strict=True)
    carried = [_carried(recorder, index, site) for site, index in pairs]
    names = _names(carried)
    values = {names[key]: key[1] for key in carried}
    body = _substitute(slotted, [names[key] for key in carried], found)
    return _assemble(body, values, spill_dir)


def check_shell_template(template: str, *, where: str = "") -> None:
    """Refuse, before running, a shell template whose ``{{ }}`` stand in unsafe contexts.

    Best effort: the template is rendered with stand-in values (conditions true, loops run
    once), so a ``{{ }}`` only reached otherwise is checked when the step runs.
    """
    compile_template(template, kind="probe", where=where)
    try:
        with limited(PROBE_S):
            text, recorder = _render(template, {}, where, "probe")
    except TemplateError:  # stand-ins that do not fit, or a runaway loop: no verdict
        return
    slotted, indexes = _to_slots(text, recorder, where)
    _scan(slotted, indexes, recorder, where)


def _render(
    template: str, context: Mapping[str, Any], where: str, kind: str
) -> tuple[str, _Recorder]:
    recorder = _Recorder()
    token = RECORDER.set(recorder)
    try:
        text = render_with(kind, template, context, where)
    finally:
        RECORDER.reset(token)
    return text, recorder


def _to_slots(text: str, recorder: _Recorder, where: str) -> tuple[str, list[int]]:
    """The text with each token as one SLOT, and the value index of each slot in order."""
    if SLOT in text:
        raise failure("the script contains a NUL byte, which no shell can run", where)
    indexes: list[int] = []

    def slot(match: re.Match[str]) -> str:
        indexes.append(int(match.group(1)))
        return SLOT

    slotted = recorder.token.sub(slot, text)
    if recorder.trace.search(slotted):
        raise failure(_changed_value().message, where)
    return slotted, indexes


# What one slot carries: (kind, text); kind 1 is the quoted text of a shell_escape.
_Carried = tuple[int, str]


def _carried(recorder: _Recorder, index: int, site: Site) -> _Carried:
    """The text a slot carries: a shell_escape stands for its raw value only in a bare word."""
    raw = recorder.raw.get(index)
    if raw is None:
        return (0, recorder.values[index])
    if site.where is Where.BARE:
        return (0, raw)
    return (1, recorder.values[index])


def _names(carried: list[_Carried]) -> dict[_Carried, str]:
    """Variable names in order of first appearance; equal values share one variable."""
    names: dict[_Carried, str] = {}
    for key in carried:
        names.setdefault(key, f"{VALUE_PREFIX}{len(names) + 1}")
    return names


def _check_values(recorder: _Recorder, indexes: list[int], where: str) -> None:
    for index in indexes:
        if "\x00" in recorder.values[index]:
            raise failure(
                "the value of a {{ }} contains a NUL byte, which a shell variable cannot hold",
                where,
                line_of(recorder.locations[index]),
            )


def _scan(slotted: str, indexes: list[int], recorder: _Recorder, where: str) -> Scan:
    try:
        found = scan(slotted)
    except Refused as refused:
        index = indexes[slotted.count(SLOT, 0, refused.position)]
        raise _refusal(refused.context, line_of(recorder.locations[index]), where) from None
    positions = [m.start() for m in re.finditer(SLOT, slotted)]
    if sorted(site.position for site in found.sites) != positions:
        raise _refusal("in a place whose quoting could not be determined", None, where)
    found.sites.sort(key=lambda site: site.position)
    return found


def _refusal(context: str, line: int | None, where: str) -> TemplateError:
    error = failure(
        f"a {{{{ }}}} stands {context}, where its value cannot be passed to the shell "
        "exactly; refusing to run it",
        where,
        line,
    )
    error.hint = _REFUSAL_HINT
    return error


def _substitute(slotted: str, names: list[str], found: Scan) -> str:
    """Apply the lexer's edits and put a quoted variable reference at every slot."""
    edits = list(found.edits)
    for site, name in zip(found.sites, names, strict=True):
        text = _reference(site, name)
        edits.append(Edit(site.start, site.position + 1, text, site.level))
    edits.sort(key=lambda edit: (edit.start, edit.end))
    parts: list[str] = []
    cursor = 0
    for edit in edits:
        parts.append(slotted[cursor : edit.start])
        parts.append(_escape_backticks(edit.text, edit.level))
        cursor = edit.end
    parts.append(slotted[cursor:])
    return "".join(parts)


def _reference(site: Site, name: str) -> str:
    """The reference to ``name`` that expands to exactly its value in the site's context."""
    ref = "${" + name + "}"
    if site.where is Where.BARE:
        return f'"{ref}"'
    if site.where is Where.SINGLE:
        return f"'\"{ref}\"'"
    if site.after_backslash:  # the author's literal backslash, kept literal
        return "\\\\" + ref
    return ref


def _escape_backticks(text: str, level: int) -> str:
    for _ in range(level):
        text = text.replace("\\", "\\\\").replace("`", "\\`")
    return text


def _assemble(body: str, values: dict[str, str], spill_dir: Path | None) -> ShellScript:
    """Put values in the environment, or in private files read by a prelude when large."""
    script = ShellScript(script=body, spill_dir=spill_dir)
    prelude: list[str] = []
    total = 0
    try:
        for name, value in values.items():
            data = _encode(value)
            size = len(data) + len(name) + 2
            if size <= MAX_ENV_VALUE and total + size <= MAX_ENV_TOTAL:
                script.env[name] = value
                total += size
                continue
            prelude.append(_spill(script, name, data))
    except BaseException:
        script.cleanup()
        raise
    script.script = "".join(prelude) + body
    return script


def _spill(script: ShellScript, name: str, data: bytes) -> str:
    """Write one value to a 0600 file; the returned prelude reads it back exactly."""
    path = _private_file(data, script.spill_dir, ".value")
    script.files.append(path)
    file_var = FILE_PREFIX + name.removeprefix(VALUE_PREFIX)
    script.env[file_var] = str(path)
    # printf x keeps trailing newlines that $(…) would strip; cat output has no NUL.
    return f'{name}=$(cat -- "${file_var}" && printf x) || exit 125\n{name}=${{{name}%x}}\n'


def _private_file(data: bytes, directory: Path | None, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="llm-mux-", suffix=suffix, dir=directory)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return Path(name)


def _encode(text: str) -> bytes:
    try:
        return os.fsencode(text)
    except UnicodeEncodeError as exc:
        raise TemplateError(f"a shell value is not encodable text: {exc.reason}") from None
