"""The sandboxed Jinja2 environment every template of llm-mux renders in.

Values are data: a rendered value is never rendered again, so a ``{{ }}`` inside a model's
answer stays inert. Undefined names fail loudly with the path the template used and the
names that do exist, because a silently empty ``{{ steps.fetch.outptu }}`` would run a
workflow on nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import json
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from contextvars import ContextVar
from types import FrameType, TracebackType
from typing import Any, NoReturn

from jinja2 import nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.parser import Parser
from jinja2.runtime import Context, StrictUndefined, Undefined
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

from llm_mux.errors import LlmMuxError, TemplateError, did_you_mean
from llm_mux.schema import Record, dump, field_keys
from llm_mux.secrets import redact
from llm_mux.templates import budget
from llm_mux.values import Value, as_dict
from llm_mux.values import names as value_names

# Where a ``{{ }}`` was output: the compiled template and the line of its Python code.
Location = tuple[Any, int] | None

# Set by shell rendering: turns each evaluated ``{{ }}`` into a placeholder token.
RECORDER: ContextVar[Callable[[str, Location], str] | None] = ContextVar(
    "llm_mux_template_recorder", default=None
)

_TEMPLATE_FILENAME = "<template>"
_MAX_AVAILABLE = 40
_MAX_POWER_BITS = 1 << 20  # ``**`` results past this many bits take seconds to compute
_MAX_REPEAT = 16 * 1024 * 1024  # items of a ``"x" * n`` repetition
_MAX_SIZE_ARG = 1024 * 1024  # a width or count given to a filter that loops over it
_SIZED_FILTERS = ("center", "indent", "wordwrap", "truncate", "slice")
_MAX_LIPSUM_WORDS = 100_000


class MissingValue(UndefinedError):
    """An undefined name or attribute was used; carries what was looked up on what."""

    def __init__(self, obj: Any, name: Any) -> None:
        super().__init__(f"{name!r} is undefined")
        self.obj = obj
        self.name = name


class _StrictUndefined(StrictUndefined):
    """StrictUndefined whose failure says what was looked up, for did-you-mean messages."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        if self._undefined_hint is None and self._undefined_exception is UndefinedError:
            raise MissingValue(self._undefined_obj, self._undefined_name)
        raise self._undefined_exception(self._undefined_message)


# StrictUndefined binds its dunders to the base method directly; rebind them to ours.
_DUNDERS = """__iter__ __str__ __len__ __eq__ __ne__ __bool__ __hash__ __contains__ __add__
__radd__ __sub__ __rsub__ __mul__ __rmul__ __truediv__ __rtruediv__ __floordiv__ __rfloordiv__
__mod__ __rmod__ __pos__ __neg__ __call__ __getitem__ __lt__ __le__ __gt__ __ge__ __int__
__float__ __complex__ __pow__ __rpow__"""
for _dunder in _DUNDERS.split():
    setattr(_StrictUndefined, _dunder, _StrictUndefined._fail_with_undefined_error)


class _ProbeUndefined(Undefined):
    """A permissive stand-in for every name, so a shell template's shape can be checked."""

    __slots__ = ()

    def __str__(self) -> str:
        return "x"

    def __iter__(self) -> Iterator[Any]:
        return iter((self,))

    def __bool__(self) -> bool:
        return True

    def __len__(self) -> int:
        return 1

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self


class _Environment(SandboxedEnvironment):
    """The sandbox, with mapping keys winning over methods (``steps.x.items`` is the key).

    Loops and calls charge the render budget (see :mod:`llm_mux.templates.budget`), and
    ``**`` and ``*`` refuse results so large that computing them alone would hold the run.
    """

    intercepted_binops = frozenset(("**", "*"))

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and isinstance(attribute, str):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            guard = nodes.ImportedName("llm_mux.templates.budget.guarded")
            loop.iter = nodes.Call(guard, [loop.iter], [], None, None, lineno=loop.lineno)
        return tree

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget.tick()
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _too_large_power(left, right):
            raise SecurityError(f"{left!r} ** {right!r} is too large to compute")
        if operator == "*" and _too_long_repeat(left, right):
            raise SecurityError("a repetition with '*' would be too long")
        return super().call_binop(context, operator, left, right)


def _size_checked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter whose work grows with a number it is given, refusing huge ones."""

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            if isinstance(value, int) and value > _MAX_SIZE_ARG:
                raise SecurityError(f"{name}({value}) is too large")
        return function(*args, **kwargs)

    return checked


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's ``lipsum``, refusing sizes that would take minutes to generate."""
    from jinja2.utils import generate_lorem_ipsum

    if n * max > _MAX_LIPSUM_WORDS:
        raise SecurityError(f"lipsum of {n} × {max} words is too large")
    return generate_lorem_ipsum(n, html, min, max)


def _too_large_power(left: Any, right: Any) -> bool:
    if not (isinstance(left, int) and isinstance(right, int)) or right <= 0:
        return False
    return abs(left) > 1 and abs(left).bit_length() * right > _MAX_POWER_BITS


def _too_long_repeat(left: Any, right: Any) -> bool:
    sequence, times = (left, right) if isinstance(right, int) else (right, left)
    if not isinstance(sequence, str | bytes | list | tuple) or not isinstance(times, int):
        return False
    return len(sequence) * times > _MAX_REPEAT


@pass_context
def _record(context: Context, value: Any) -> Any:
    """Finalize hook of shell rendering: the value is recorded, a token is output."""
    record = RECORDER.get()
    if record is None:
        return value
    return record(value if isinstance(value, Escaped) else str(value), _location())


def _location() -> Location:
    """The compiled template and code line of the ``{{ }}`` being output (cheap; see line_of)."""
    frame: FrameType | None = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            return None
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            return template, frame.f_lineno
        frame = frame.f_back
    return None


def line_of(location: Location) -> int | None:
    """The template line of a recorded location (costly in Jinja, so done only for errors)."""
    if location is None:
        return None
    template, code_line = location
    line: int = template.get_corresponding_lineno(code_line)
    return line


@functools.cache
def environment(kind: str = "plain") -> SandboxedEnvironment:
    """The shared environment: ``plain``, ``shell`` (records values) or ``probe``."""
    env = _Environment(
        autoescape=False,
        keep_trailing_newline=True,
        undefined=_ProbeUndefined if kind == "probe" else _StrictUndefined,
        finalize=_record if kind != "plain" else None,
    )
    env.filters.update(FILTERS)
    for name in _SIZED_FILTERS:
        env.filters[name] = _size_checked(name, env.filters[name])
    env.globals["lipsum"] = _lipsum
    if kind != "plain":
        env.filters["shell_escape"] = escaped  # its text is chosen by the value's context
    return env


@functools.lru_cache(maxsize=256)
def _compile(kind: str, source: str) -> Any:
    return environment(kind).from_string(source)


@functools.lru_cache(maxsize=256)
def _compile_expression(expression: str) -> Any:
    return environment().compile_expression(expression, undefined_to_none=False)


def compile_template(source: str, *, kind: str = "plain", where: str = "") -> Any:
    """The compiled template, or a TemplateError naming the line of a syntax error."""
    try:
        return _compile(kind, source)
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, source, where) from None


def parse(source: str, *, expression: bool = False, where: str = "") -> nodes.Node:
    """The Jinja AST of a template or of a single expression."""
    env = environment()
    try:
        if not expression:
            return env.parse(source)
        parser = Parser(env, source, state="variable")
        node = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("unexpected text after the expression", 1)
        return node
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, source, where) from None


def render_with(kind: str, source: str, context: Mapping[str, Any], where: str) -> str:
    """Render ``source`` in the environment ``kind``, translating every failure."""
    template = compile_template(source, kind=kind, where=where)
    try:
        return _generate(template, context)
    except Exception as exc:
        raise runtime_error(exc, source, context, where) from exc


def _generate(template: Any, context: Mapping[str, Any]) -> str:
    """The rendered text; with a render budget, each chunk is charged and the size capped."""
    limits = budget.BUDGET.get()
    if limits is None:
        text: str = template.render(dict(context))
        return text
    parts: list[str] = []
    size = 0
    for chunk in template.generate(dict(context)):
        size += len(chunk)
        limits.output(size)
        parts.append(chunk)
    return "".join(parts)


def render(template: str, context: Mapping[str, Any], *, where: str = "") -> str:
    """Render a template; undefined names and bad values are TemplateErrors."""
    return render_with("plain", template, context, where)


def evaluate(expression: str, context: Mapping[str, Any], *, where: str = "") -> Any:
    """Evaluate one Jinja expression (``if``, ``for_each``) over the context."""
    try:
        compiled = _compile_expression(expression)
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, expression, where) from None
    try:
        value = compiled(**dict(context))
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
    except Exception as exc:
        raise runtime_error(exc, expression, context, where, expression=True) from exc
    return value


def check_syntax(template: str, *, where: str = "") -> None:
    """Raise a TemplateError naming the line when the template does not parse."""
    compile_template(template, where=where)


def check_expression(expression: str, *, where: str = "") -> None:
    """Raise a TemplateError when the expression does not parse."""
    try:
        environment().compile_expression(expression)
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, expression, where) from None


def failure(message: str, where: str = "", line: int | None = None) -> TemplateError:
    """A TemplateError prefixed with ``where`` and the template line."""
    text = f"line {line}: {message}" if line else message
    return TemplateError(f"{where}: {text}" if where else text, line=line)


def syntax_error(exc: TemplateSyntaxError, source: str, where: str) -> TemplateError:
    """Translate a Jinja syntax error; the offending line is quoted."""
    line = exc.lineno or 1
    message = f"template syntax error: {exc.message or 'invalid syntax'}"
    message += _unknown_name_hint(exc.message or "")
    lines = source.splitlines()
    if 0 < line <= len(lines) and lines[line - 1].strip():
        message += f"\n    {lines[line - 1].strip()[:200]}"
    return failure(message, where, line)


def _unknown_name_hint(message: str) -> str:
    env = environment()
    for prefix, names in (("No filter named '", env.filters), ("No test named '", env.tests)):
        if message.startswith(prefix):
            return did_you_mean(message[len(prefix) :].split("'")[0], names)
    return ""


def runtime_error(
    exc: Exception,
    source: str,
    context: Mapping[str, Any],
    where: str,
    *,
    expression: bool = False,
) -> TemplateError:
    """Translate an exception raised while rendering or evaluating into a TemplateError."""
    line = None if expression else _error_line(exc.__traceback__)
    if isinstance(exc, MissingValue):
        return failure(_missing_message(exc, source, context, expression), where, line)
    if isinstance(exc, SecurityError):
        return failure(f"not allowed in a template: {exc}", where, line)
    if isinstance(exc, LlmMuxError):
        return failure(exc.message, where, line)
    if isinstance(exc, UndefinedError):
        return failure(str(exc), where, line)
    return failure(f"{type(exc).__name__}: {exc}", where, line)


def _error_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _missing_message(
    exc: MissingValue, source: str, context: Mapping[str, Any], expression: bool
) -> str:
    from llm_mux.templates.references import owner_path

    if exc.obj is missing:
        return _undefined_on(exc.name, "", [str(k) for k in context])
    try:
        path = owner_path(parse(source, expression=expression), exc.name)
    except TemplateError:
        path = None
    owner = f" on {path}" if path else ""
    if not isinstance(exc.name, str):
        size = f" (it has {len(exc.obj)} items)" if isinstance(exc.obj, Sized) else ""
        return f"index {exc.name!r} does not exist{owner}{size}"
    if isinstance(exc.obj, str | int | float | bool) or exc.obj is None:
        return f"{exc.name!r} is undefined{owner} (a {type(exc.obj).__name__}, it has no fields)"
    return _undefined_on(exc.name, owner, available_names(exc.obj))


def _undefined_on(name: Any, owner: str, available: list[str]) -> str:
    message = f"{name!r} is undefined{owner}"
    matches = difflib.get_close_matches(str(name), available, n=1, cutoff=0.6)
    if matches:
        message += f"; did you mean {matches[0]!r}?"
    if not available:
        return message + "; nothing is available there"
    listed = ", ".join(available[:_MAX_AVAILABLE])
    if len(available) > _MAX_AVAILABLE:
        listed += f", … ({len(available) - _MAX_AVAILABLE} more)"
    return f"{message}{' ' if matches else '; '}available: {listed}"


def available_names(obj: Any) -> list[str]:
    """The names a template can look up on ``obj``: mapping keys or public data attributes."""
    if isinstance(obj, Mapping):
        return [str(key) for key in obj]
    if isinstance(obj, Record):
        return field_keys(type(obj))
    if isinstance(obj, Value):
        return value_names(obj)
    return [name for name in dir(obj) if not name.startswith("_") and _is_data(obj, name)]


def _is_data(obj: Any, name: str) -> bool:
    try:
        static = inspect.getattr_static(obj, name)
    except AttributeError:
        return True
    if isinstance(static, property | functools.cached_property):
        return True
    return not callable(static) and not isinstance(static, classmethod | staticmethod)


# --- filters (all Jinja built-ins stay available; these are added or replaced) ---


class Escaped(str):
    """``shell_escape`` in a shell ``run``: the POSIX-quoted text, keeping the raw value.

    As a whole ``{{ }}`` in a bare word it stands for ``raw`` (what the shell would parse the
    quoted text back into); anywhere else — quotes, a here-document, or combined with other
    text — it is the quoted text, so a nested shell (``bash -c '…'``) parses it back exactly.
    """

    raw: str


def escaped(value: Any) -> Escaped:
    """The ``shell_escape`` filter of shell templates (see :class:`Escaped`)."""
    raw = str(value)
    text = Escaped(shlex.quote(raw))
    text.raw = raw
    return text


def shell_escape(value: Any) -> str:
    """POSIX single-quoting: one shell word that is exactly ``str(value)``."""
    return "'" + str(value).replace("'", "'\\''") + "'"


def to_json(value: Any, indent: int | None = None) -> str:
    """JSON text of a value (non-ASCII kept as is); objects become their fields."""
    return json.dumps(value, ensure_ascii=False, indent=indent, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Undefined):
        str(value)  # raises the undefined error
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Record):
        return dump(value)
    if isinstance(value, Value):
        return as_dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return list(value)
    return str(value)


def lines(value: Any) -> list[str]:
    """Split text into its non-empty lines, each without a trailing carriage return."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        items: Iterable[Any] = str(value).split("\n")
    else:
        items = value
    stripped = (str(item).removesuffix("\r") for item in items)
    return [line for line in stripped if line]


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Like Jinja's ``default``, but an empty value (``""``, ``None``, ``[]``) counts as unset."""
    if isinstance(value, Undefined) or value is None:
        return default_value
    if boolean:
        return value if value else default_value
    if isinstance(value, Sized) and not isinstance(value, Undefined) and len(value) == 0:
        return default_value
    return value


def from_json(value: Any) -> Any:
    """Parse JSON text; invalid JSON is a TemplateError quoting the start of the text."""
    text = str(value)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        shown = redact(text if len(text) <= 200 else text[:200] + "…")
        raise TemplateError(
            f"from_json: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"{shown!r}"
        ) from None


def split(value: Any, sep: str | None = None, maxsplit: int = -1) -> list[str]:
    """``str.split`` of the value's text."""
    return str(value).split(sep, maxsplit)


FILTERS: dict[str, Callable[..., Any]] = {
    "shell_escape": shell_escape,
    "json": to_json,
    "lines": lines,
    "default": default,
    "d": default,
    "from_json": from_json,
    "split": split,
}
