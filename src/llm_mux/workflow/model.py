"""The workflow file as validated records (SPEC §2), parsed with every problem collected.

Each step is validated against the model of its own ``type``, so a key that belongs to
another step type is an error naming it instead of a silently ignored setting. Parsing
never stops at the first problem: :func:`parse_workflow` returns the workflow together with
a list of :class:`Issue` so ``validate`` can report everything at once.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from llm_mux.config.models import Role
from llm_mux.errors import did_you_mean
from llm_mux.schema import ErrorDetails, Invalid, Record, field_keys, rule, validate
from llm_mux.values import Value, field
from llm_mux.workflow.durations import parse_duration, parse_timeout

DEFAULT_MAX_PARALLEL = 4


def _delay(value: object) -> float:
    if value == 0 and not isinstance(value, bool):
        return 0.0
    return parse_duration(value)


def _version(value: object) -> object:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _names(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Issue(Value):
    """One problem found in a workflow: where it is, which step, what is wrong."""

    message: str
    file: str | None = None
    line: int | None = None
    step: str | None = None
    warning: bool = False
    column: int | None = None

    def format(self) -> str:
        parts = (self.file, self.line, self.column if self.line else None)
        where = ":".join(str(p) for p in parts if p is not None)
        step = f"step '{self.step}': " if self.step else ""
        text = f"{step}{self.message}"
        return f"{where}: {text}" if where else text


class Arg(Record):
    """``[args.NAME]``: a value passed as ``NAME=value`` after the workflow name."""

    required: bool = False
    default: str | int | float | bool | None = None
    description: str = ""

    def default_text(self) -> str | None:
        """The default as the string a command-line value would be."""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return None if self.default is None else str(self.default)


class Step(Record):
    """Fields every step has. Subclasses add their type's fields."""

    KIND: ClassVar[str] = ""
    IMPLEMENTATION: ClassVar[str] = ""  # the module whose ``KIND`` runs this type of step
    TEMPLATES: ClassVar[tuple[str, ...]] = ()  # plain Jinja templates
    SHELL_TEMPLATES: ClassVar[tuple[str, ...]] = ()  # templates run by sh

    name: str = rule(min_length=1)
    type: str
    depends_on: list[str] = rule(factory=list, before=_names)
    when: str | None = rule(default=None, key="if")
    for_each: str | None = None
    max_parallel: int | None = rule(default=None, ge=1)
    continue_on_error: bool | None = None
    timeout: float | None = rule(
        default=None, before=parse_timeout
    )  # ms; a plain number is seconds
    retries: int = rule(default=0, ge=0, le=100)
    retry_delay: float = rule(default=1000.0, before=_delay)

    @property
    def parallel_items(self) -> int:
        return self.max_parallel or DEFAULT_MAX_PARALLEL

    def template_fields(self) -> dict[str, str]:
        """Field name → template text for every template this step holds."""
        return {n: v for n in self.TEMPLATES if isinstance(v := getattr(self, n), str)}

    def shell_fields(self) -> dict[str, str]:
        return {n: v for n in self.SHELL_TEMPLATES if isinstance(v := getattr(self, n), str)}


class ShellStep(Step):
    """``type = "shell"``: run a command with ``sh -c`` in the project directory."""

    KIND = "shell"
    IMPLEMENTATION = "llm_mux.workflow.steps.shell"
    SHELL_TEMPLATES = ("run",)
    run: str


class QueryStep(Step):
    """``type = "query"``: send a prompt to a role (or one backend)."""

    KIND = "query"
    IMPLEMENTATION = "llm_mux.workflow.steps.query"
    TEMPLATES = ("prompt",)
    role: str | None = None
    backend: str | None = None
    prompt: str
    parallel: bool = False
    min_success: int | None = rule(default=None, ge=1)
    output_schema: dict[str, Any] | None = None

    def check(self) -> None:
        if (self.role is None) == (self.backend is None):
            raise ValueError("a query step needs exactly one of 'role' or 'backend'")
        if self.backend is not None and (self.parallel or self.min_success is not None):
            raise ValueError("'parallel' and 'min_success' apply to a 'role', not a 'backend'")


class ApplyStep(Step):
    """``type = "apply"``: apply edits from a step's output (or inline), then verify."""

    KIND = "apply"
    IMPLEMENTATION = "llm_mux.workflow.steps.apply"
    TEMPLATES = ("verify_retry_prompt",)
    SHELL_TEMPLATES = ("verify",)
    source: str | None = None
    edits: list[dict[str, Any]] | None = None
    verify: str | None = None
    verify_retries: int = rule(default=0, ge=0)
    verify_retry_prompt: str | None = None
    rollback_on_failure: bool = True
    allow_paths: list[str] = rule(factory=list)

    def check(self) -> None:
        if (self.source is None) == (self.edits is None):
            raise ValueError("an apply step needs exactly one of 'source' or 'edits'")

    @property
    def source_step(self) -> str | None:
        """The step named by ``source`` (``steps.NAME`` or bare ``NAME``)."""
        return None if self.source is None else self.source.removeprefix("steps.")


class StoreStep(Step):
    """``type = "store"``: store the JSON held by the rendered prompt in memory."""

    KIND = "store"
    IMPLEMENTATION = "llm_mux.workflow.steps.store"
    TEMPLATES = ("prompt",)
    prompt: str


class InputStep(Step):
    """``type = "input"``: ask the user; non-interactive runs take ``default``."""

    KIND = "input"
    IMPLEMENTATION = "llm_mux.workflow.steps.input"
    TEMPLATES = ("prompt", "default")
    prompt: str
    options: list[str] = rule(factory=list)
    default: str | None = None


# The one step-type registry: type name -> model (which names its implementation).
STEP_MODELS: dict[str, type[Step]] = {
    m.KIND: m for m in (ShellStep, QueryStep, ApplyStep, StoreStep, InputStep)
}


class _Header(Record):
    name: str | None = rule(default=None, min_length=1)
    description: str = ""
    version: str | None = rule(default=None, before=_version)
    timeout: float | None = rule(default=None, before=parse_timeout)
    continue_on_error: bool = False
    output: str | None = None
    args: dict[str, Arg] = rule(factory=dict)
    roles: dict[str, dict[str, Any]] = rule(factory=dict)
    steps: list[dict[str, Any]] = rule(factory=list)


class Workflow(Value, frozen=False):
    """A parsed workflow file. Steps keep file order; ``raw`` keeps what was written."""

    path: Path
    name: str
    description: str = ""
    version: str | None = None
    timeout: float | None = None
    continue_on_error: bool = False
    output: str | None = None
    args: dict[str, Arg] = field(factory=dict)
    roles: dict[str, Role] = field(factory=dict)
    steps: list[Step] = field(factory=list)
    raw: dict[str, Any] = field(factory=dict, repr=False)
    raw_steps: list[dict[str, Any]] = field(factory=list, repr=False)
    positions: list[int] = field(factory=list, repr=False)  # raw index of each step

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


def read_toml(path: Path) -> tuple[dict[str, Any] | None, Issue | None]:
    """The TOML table of ``path``, or an issue naming the file, line and column."""
    from llm_mux.config.loader import toml_error

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, Issue(f"cannot read workflow file: {reason}", file=str(path))
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        err = toml_error(exc, path)
        return None, Issue(err.message, file=str(path), line=err.line, column=err.column)


def parse_workflow(path: Path) -> tuple[Workflow, list[Issue]]:
    """Parse ``path`` into a :class:`Workflow` and every problem found on the way."""
    raw, issue = read_toml(path)
    workflow = Workflow(path=path, name=path.stem)
    if raw is None:
        return workflow, [issue] if issue else []
    return workflow, _Parser(path, raw, Locator(path)).fill(workflow)


class Locator:
    """Best-effort line numbers of tables and keys in a workflow file, for messages."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]")

    def __init__(self, path: Path) -> None:
        try:
            self.lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            self.lines = []
        self.headers = [(i, m.group(2).replace(" ", "")) for i, m in self._headers()]
        self.step_starts = [i for i, name in self.headers if name == "steps"]

    def _headers(self) -> list[tuple[int, re.Match[str]]]:
        found = ((i, self._HEADER.match(line)) for i, line in enumerate(self.lines))
        return [(i, m) for i, m in found if m is not None]

    def _key_in(self, start: int, end: int, key: str) -> int | None:
        pattern = re.compile(r"^\s*(?:" + re.escape(key) + r"|\"" + re.escape(key) + r"\")\s*=")
        return next((i + 1 for i in range(start, end) if pattern.match(self.lines[i])), None)

    def _end(self, start: int) -> int:
        later = [i for i, _ in self.headers if i > start]
        return later[0] if later else len(self.lines)

    def top_key(self, key: str) -> int | None:
        """Line of a key before the first table header."""
        first = self.headers[0][0] if self.headers else len(self.lines)
        return self._key_in(0, first, key) or self.table_line([key])

    def table_line(self, table: list[str]) -> int | None:
        wanted = ".".join(table)
        return next((i + 1 for i, name in self.headers if name == wanted), None)

    def table_key(self, table: list[str], key: str | None) -> int | None:
        """Line of ``key`` in ``[table]`` (the header's line when not found)."""
        wanted = ".".join(table)
        start = next((i for i, name in self.headers if name == wanted), None)
        if start is None:
            return None
        found = self._key_in(start + 1, self._end(start), key) if key else None
        return found or start + 1

    def step_line(self, index: int) -> int | None:
        """Line of the ``[[steps]]`` header of step number ``index`` (0-based)."""
        return self.step_starts[index] + 1 if index < len(self.step_starts) else None

    def step_key(self, index: int, key: str | None) -> int | None:
        """Line of ``key`` in step ``index`` (its header line when not found)."""
        if index >= len(self.step_starts) or key is None:
            return self.step_line(index)
        start = self.step_starts[index]
        return self._key_in(start + 1, self._end(start), key) or self._subtable(index, key)

    def _subtable(self, index: int, key: str) -> int:
        """Line of ``[steps.KEY]`` inside step ``index`` (its header line when absent)."""
        start = self.step_starts[index]
        end = self.step_starts[index + 1] if index + 1 < len(self.step_starts) else len(self.lines)
        wanted = f"steps.{key}"
        found = (i + 1 for i, name in self.headers if start < i < end and name == wanted)
        return next(found, start + 1)


class _Parser:
    """Turns the raw table into models, collecting an Issue for each problem."""

    def __init__(self, path: Path, raw: dict[str, Any], locator: Locator) -> None:
        self.path, self.raw, self.locator = path, raw, locator
        self.issues: list[Issue] = []

    def issue(self, message: str, *, line: int | None = None, step: str | None = None) -> None:
        self.issues.append(Issue(message, file=str(self.path), line=line, step=step))

    def fill(self, workflow: Workflow) -> list[Issue]:
        workflow.raw = self.raw
        header = self._header()
        if header is not None:
            workflow.name = header.name or workflow.name
            workflow.description = header.description
            workflow.version = header.version
            workflow.timeout = header.timeout
            workflow.continue_on_error = header.continue_on_error
            workflow.output = header.output
            workflow.args = dict(header.args)
            workflow.roles = self._roles(header.roles)
        raw_steps = self.raw.get("steps", [])
        if isinstance(raw_steps, list):
            workflow.raw_steps = [s if isinstance(s, dict) else {} for s in raw_steps]
            parsed = [(i, self._step((i, raw))) for i, raw in enumerate(raw_steps)]
            workflow.steps = [s for _, s in parsed if s is not None]
            workflow.positions = [i for i, s in parsed if s is not None]
        if not workflow.raw_steps and header is not None:
            self.issue("the workflow has no steps (add at least one [[steps]] table)")
        return self.issues

    def _header(self) -> _Header | None:
        try:
            return validate(_Header, self.raw)
        except Invalid as exc:
            errors = exc.errors()
            for error in errors:
                self._header_error(error)
        bad = {str(e["loc"][0]) for e in errors if e["loc"]}
        try:  # keep what is valid so later checks still run
            safe = {k: v for k, v in self.raw.items() if k in field_keys(_Header)}
            safe = {k: v for k, v in safe.items() if k not in bad}
            return validate(_Header, {**safe, "steps": []})
        except Invalid:
            return None

    def _header_error(self, error: ErrorDetails) -> None:
        loc = [str(p) for p in error["loc"]]
        if loc and loc[0] == "steps" and error["type"] != "list_type":
            return  # step tables are validated one by one
        if error["type"] == "extra_forbidden" and len(loc) == 1:
            hint = did_you_mean(loc[0], [*field_keys(_Header), "steps"])
            self.issue(f"unknown key '{loc[0]}'{hint}", line=self.locator.top_key(loc[0]))
            return
        line = self.locator.top_key(loc[0])
        if len(loc) >= 2 and loc[0] in ("args", "roles"):
            key = loc[2] if len(loc) > 2 else None
            line = self.locator.table_key(loc[:2], key) or line
        self.issue(_describe(error, _Header, "the workflow"), line=line)

    def _roles(self, raw: dict[str, dict[str, Any]]) -> dict[str, Role]:
        roles = {}
        for name, table in raw.items():
            try:
                roles[name] = validate(Role, {**table, "name": name})
            except Invalid as exc:
                line = self.locator.table_line(["roles", name])
                for error in exc.errors():
                    self.issue(_describe(error, Role, f"[roles.{name}]"), line=line)
        return roles

    def _step(self, indexed: tuple[int, Any]) -> Step | None:
        index, raw = indexed
        label = _label(index, raw)
        line = self.locator.step_line(index)
        if not isinstance(raw, dict):
            self.issue("must be a table ([[steps]])", line=line, step=label)
            return None
        kind = raw.get("type")
        model = STEP_MODELS.get(kind) if isinstance(kind, str) else None
        if model is None:
            self.issue(_type_problem(kind), line=self.locator.step_key(index, "type"), step=label)
            return None
        try:
            return validate(model, raw)
        except Invalid as exc:
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else None
                where = self.locator.step_key(index, key) if key else line
                self.issue(_step_problem(error, model), line=where, step=label)
            return _salvage(model, raw, exc)


def _salvage(model: type[Step], raw: dict[str, Any], exc: Invalid) -> Step | None:
    """The step without its stray keys, so later checks still see it (already reported)."""
    errors = exc.errors()
    if any(e["type"] != "extra_forbidden" or len(e["loc"]) != 1 for e in errors):
        return None
    stray = {str(e["loc"][0]) for e in errors}
    try:
        return validate(model, {k: v for k, v in raw.items() if k not in stray})
    except Invalid:
        return None


def _label(index: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) and name else f"#{index + 1}"


def _type_problem(kind: object) -> str:
    allowed = ", ".join(STEP_MODELS)
    if kind is None:
        return f"missing required field 'type' (one of {allowed})"
    if not isinstance(kind, str):
        return f"'type' must be a string, one of {allowed}"
    return f"unknown step type '{kind}'{did_you_mean(kind, STEP_MODELS)}; allowed: {allowed}"


def _step_problem(error: ErrorDetails, model: type[Step]) -> str:
    loc = [str(p) for p in error["loc"]]
    if error["type"] == "extra_forbidden" and len(loc) == 1:
        return _foreign_key(loc[0], model)
    if error["type"] == "missing" and len(loc) == 1:
        return f"missing required field '{loc[0]}' for a {model.KIND} step"
    return _describe(error, model, f"a {model.KIND} step")


def _foreign_key(key: str, model: type[Step]) -> str:
    owners = [k for k, m in STEP_MODELS.items() if key in _field_names(m)]
    if owners:
        return (
            f"'{key}' is not a field of {model.KIND} steps "
            f"(it belongs to {', '.join(owners)} steps)"
        )
    return f"unknown key '{key}' in a {model.KIND} step{did_you_mean(key, _field_names(model))}"


def _field_names(model: type[Record]) -> list[str]:
    return field_keys(model)


def _describe(error: ErrorDetails, model: type[Record], owner: str) -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        hint = did_you_mean(loc[-1], _field_names(model)) if len(loc) == 1 else ""
        return f"unknown key '{key}' in {owner}{hint}"
    if error["type"] == "missing":
        return f"missing required field '{key}' in {owner}"
    if not loc:
        return message
    return f"invalid value for '{key}': {message}"
