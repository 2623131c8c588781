"""Validation of TOML tables into frozen records, with pydantic's coercions and messages.

Every command validates the config files, and most validate a workflow, before doing
anything; with pydantic that was 90 ms of a 200 ms start (importing it and building each
model's validator), more than the rest of the command. These files use a small vocabulary
of types — ``str``, ``int``, ``float``, ``bool``, ``Any``, ``list``, ``dict``, ``Literal``,
unions and nested records — which this module validates directly from the records'
annotations. The lax coercions, the error types and the messages are pydantic's, so what
users read is unchanged (every key and kind of wrong value is pinned by
``tests/unit/test_validation_messages.py``).

A record is a subclass of :class:`Record` (frozen and keyword-only, like a dataclass);
fields carry their constraints through :func:`rule`; :meth:`Record.check` holds checks across
fields. :func:`validate` builds one from a table or raises :class:`Invalid`, whose
``errors()`` are pydantic-shaped dictionaries (``type``, ``loc``, ``msg``, ``input``, ``ctx``).
"""

from __future__ import annotations

import datetime
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from llm_mux.values import MISSING, Slot, Value, replace
from llm_mux.values import field as value_field

R = TypeVar("R", bound="Record")
ErrorDetails = dict[str, Any]
Check = Callable[[Any], Any]  # returns the validated value or raises _Failed
Validator = Callable[[Any], Any]  # a rule's before/after hook; ValueError means invalid

_INTEGRAL_TEXT = re.compile(r"[+-]?\d+\.0*")
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


class Invalid(ValueError):
    """A table that does not fit its record: every problem, in the order pydantic gives."""

    def __init__(self, errors: list[ErrorDetails]) -> None:
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" for e in errors))
        self._errors = errors

    def errors(self) -> list[ErrorDetails]:
        return list(self._errors)


class _Failed(Exception):
    """Problems found below one value; ``loc`` is relative to that value."""

    def __init__(self, errors: list[ErrorDetails]) -> None:
        self.errors = errors


def _fail(kind: str, msg: str, value: Any, **ctx: Any) -> _Failed:
    error: ErrorDetails = {"type": kind, "loc": (), "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return _Failed([error])


def _under(key: str | int, errors: Iterable[ErrorDetails]) -> list[ErrorDetails]:
    return [{**e, "loc": (key, *e["loc"])} for e in errors]


class Rule(typing.NamedTuple):
    """Constraints of one field beyond its type."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    key: str | None = None  # what files write, when it differs from the name (``if``)
    before: Validator | None = None  # runs on the raw value, before the type
    after: Validator | None = None  # runs on the typed value


def rule(
    *,
    default: Any = MISSING,
    factory: Callable[[], Any] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    key: str | None = None,
    before: Validator | None = None,
    after: Validator | None = None,
) -> Any:
    """A field with constraints; no ``default`` and no ``factory`` means required."""
    found = Rule(gt, ge, le, min_length, key, before, after)
    return value_field(default=default, factory=factory, info=found)


@typing.dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(rule,))
class Record(Value, kw_only=True):
    """Base of validated tables: a frozen, keyword-only :class:`Value`."""

    def check(self) -> None:
        """Checks across fields, run once every field is valid; raise ValueError."""

    @property
    def fields_set(self) -> frozenset[str]:
        """Names of the fields the table gave (pydantic's ``model_fields_set``)."""
        found: frozenset[str] = self.__dict__.get("_fields_set", frozenset())
        return found


class Field:
    """One field of a record as validation sees it. Its annotation is evaluated and its
    checker built on first use: a table names a few of its record's fields."""

    __slots__ = ("_check", "_rule", "_slot", "key", "name", "required")

    def __init__(self, slot: Slot) -> None:
        self._rule = slot.info if isinstance(slot.info, Rule) else Rule()
        self.name, self.key = slot.name, self._rule.key or slot.name
        self.required = slot.required
        self._slot = slot
        self._check: Check | None = None

    def check(self, value: Any) -> Any:
        """``value`` validated for this field, or :class:`_Failed`."""
        if self._check is None:
            self._check = _checker_for(self._slot.type(), self._rule)
        return self._check(value)

    @property
    def record(self) -> type[Record] | None:
        """The nested record type, for did-you-mean below this field (an error path)."""
        return _nested_record(self._slot.type())


_SPECS: dict[type[Record], tuple[tuple[Field, ...], frozenset[str]]] = {}


def fields(cls: type[Record]) -> tuple[Field, ...]:
    """The fields of ``cls`` in declaration order (built on first use, then cached)."""
    return _spec(cls)[0]


def _spec(cls: type[Record]) -> tuple[tuple[Field, ...], frozenset[str]]:
    """The fields of ``cls`` and every key a table of it may hold (names and aliases)."""
    found = _SPECS.get(cls)
    if found is None:
        declared = tuple(Field(slot) for slot in cls._value_fields)
        found = declared, frozenset(k for f in declared for k in (f.key, f.name))
        _SPECS[cls] = found
    return found


def field_keys(cls: type[Record]) -> list[str]:
    """The keys a table of ``cls`` may hold."""
    return [f.key for f in fields(cls)]


def _checker_for(annotation: Any, found: Rule) -> Check:
    """The type's checker wrapped in the rule's hooks."""
    check = _checker(annotation, found)
    if found.after is not None:
        check = _then(check, found.after)
    if found.before is not None:
        check = _first(found.before, check)
    return check


def _nested_record(annotation: Any) -> type[Record] | None:
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return annotation
    found = (_nested_record(arg) for arg in typing.get_args(annotation))
    return next((record for record in found if record is not None), None)


def _hooked(hook: Validator, value: Any) -> Any:
    try:
        return hook(value)
    except ValueError as exc:
        raise _fail("value_error", f"Value error, {exc}", value, error=str(exc)) from None


def _first(hook: Validator, check: Check) -> Check:
    return lambda value: check(_hooked(hook, value))


def _then(check: Check, hook: Validator) -> Check:
    return lambda value: _hooked(hook, check(value))


def validate(cls: type[R], data: Any) -> R:
    """A ``cls`` built from the table ``data``; :class:`Invalid` lists every problem."""
    try:
        return _build(cls, data)
    except _Failed as exc:
        raise Invalid(exc.errors) from None


def _build(cls: type[R], data: Any) -> R:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        name = cls.__name__
        raise _fail("model_type", f"Input should be a valid dictionary or instance of {name}", data)
    values: dict[str, Any] = {}
    errors: list[ErrorDetails] = []
    declared, known = _spec(cls)
    for field in declared:
        key = field.key if field.key in data else field.name if field.name in data else None
        if key is None:
            if field.required:
                errors.append({"type": "missing", "loc": (field.key,), "msg": "Field required"})
            continue
        try:
            values[field.name] = field.check(data[key])
        except _Failed as exc:
            errors.extend(_under(key, exc.errors))
    for key, value in data.items():
        if key not in known:
            extra = {"type": "extra_forbidden", "loc": (key,), "input": value}
            errors.append({**extra, "msg": "Extra inputs are not permitted"})
    if errors:
        raise _Failed(errors)
    built = cls(**values)
    object.__setattr__(built, "_fields_set", frozenset(values))
    _hooked(lambda _: built.check(), data)
    return built


def updated(record: R, **changes: Any) -> R:
    """A copy of ``record`` with ``changes`` (counted as given), like ``model_copy``."""
    copy = replace(record, **changes)
    object.__setattr__(copy, "_fields_set", record.fields_set | frozenset(changes))
    return copy


def dump(
    record: Record,
    *,
    by_alias: bool = False,
    exclude: Iterable[str] = (),
    exclude_unset: bool = False,
    exclude_none: bool = False,
) -> dict[str, Any]:
    """``record`` as JSON-ready data (pydantic's ``model_dump(mode="json")``); the options
    apply to nested records too, ``exclude`` only at the top."""
    options = _DumpOptions(by_alias, exclude_unset, exclude_none)
    return options.record(record, frozenset(exclude))


class _DumpOptions:
    def __init__(self, by_alias: bool, exclude_unset: bool, exclude_none: bool) -> None:
        self.by_alias, self.exclude_unset, self.exclude_none = by_alias, exclude_unset, exclude_none

    def record(self, record: Record, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        given = record.fields_set
        out: dict[str, Any] = {}
        for field in fields(type(record)):
            if field.name in exclude or (self.exclude_unset and field.name not in given):
                continue
            value = getattr(record, field.name)
            if self.exclude_none and value is None:
                continue
            out[field.key if self.by_alias else field.name] = self.plain(value)
        return out

    def plain(self, value: Any) -> Any:
        if isinstance(value, Record):
            return self.record(value)
        if isinstance(value, dict):
            return {str(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.plain(v) for v in value]
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()
        return value


# -- checkers by type ---------------------------------------------------------------------


def _checker(annotation: Any, found: Rule) -> Check:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        return _union(args, found)
    if origin is Literal:
        return _literal(args)
    if origin is list:
        return _sized(_list(_checker(args[0], Rule())), found)
    if origin is dict:
        return _dict(_checker(args[1], Rule()))
    if annotation is Any:
        return lambda value: value
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return lambda value: _build(annotation, value)
    scalar = _SCALARS.get(annotation)
    if scalar is None:
        raise TypeError(f"no checker for {annotation!r}")
    if annotation is str:
        return _sized(scalar, found)
    return _bounded(scalar, found)


def _union(members: tuple[Any, ...], found: Rule) -> Check:
    optional = type(None) in members
    kinds = [m for m in members if m is not type(None)]
    if len(kinds) == 1:
        inner = _checker(kinds[0], found)
        return lambda value: None if value is None and optional else inner(value)
    checks = [(m, _checker(m, found)) for m in kinds]

    def check(value: Any) -> Any:
        if value is None and optional:
            return None
        exact = next((c for m, c in checks if type(value) is m), None)
        if exact is not None:
            return exact(value)
        errors: list[ErrorDetails] = []
        for member, each in checks:
            try:
                return each(value)
            except _Failed as exc:
                errors.extend(_under(getattr(member, "__name__", str(member)), exc.errors))
        raise _Failed(errors)

    return check


def _literal(allowed: tuple[Any, ...]) -> Check:
    shown = [repr(a) for a in allowed]
    expected = shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"

    def check(value: Any) -> Any:
        for option in allowed:
            if value == option and type(value) is type(option):
                return option
        raise _fail("literal_error", f"Input should be {expected}", value, expected=expected)

    return check


def _list(item: Check) -> Check:
    def check(value: Any) -> list[Any]:
        if not isinstance(value, list | tuple):
            raise _fail("list_type", "Input should be a valid list", value)
        return [each for _, each in _each(enumerate(value), item)]

    return check


def _dict(item: Check) -> Check:
    def check(value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise _fail("dict_type", "Input should be a valid dictionary", value)
        for key in value:
            if not isinstance(key, str):
                raise _fail("string_type", "Input should be a valid string", key)
        return dict(_each(value.items(), item))

    return check


def _each(entries: Iterable[tuple[Any, Any]], item: Check) -> list[tuple[Any, Any]]:
    """Every entry's value checked by ``item``; all problems, each under its key or index."""
    out, errors = [], []
    for key, value in entries:
        try:
            out.append((key, item(value)))
        except _Failed as exc:
            errors.extend(_under(key, exc.errors))
    if errors:
        raise _Failed(errors)
    return out


def _sized(check: Check, found: Rule) -> Check:
    least = found.min_length
    if least is None:
        return check

    def sized(value: Any) -> Any:
        value = check(value)
        if len(value) >= least:
            return value
        if isinstance(value, str):
            unit = "character" if least == 1 else "characters"
            msg = f"String should have at least {least} {unit}"
            raise _fail("string_too_short", msg, value, min_length=least)
        unit = "item" if least == 1 else "items"
        msg = f"List should have at least {least} {unit} after validation, not {len(value)}"
        ctx = {"field_type": "List", "min_length": least, "actual_length": len(value)}
        raise _fail("too_short", msg, value, **ctx)

    return sized


_BOUNDS = (
    ("gt", "greater_than", "greater than", lambda value, bound: value > bound),
    ("ge", "greater_than_equal", "greater than or equal to", lambda value, bound: value >= bound),
    ("le", "less_than_equal", "less than or equal to", lambda value, bound: value <= bound),
)


def _bounded(check: Check, found: Rule) -> Check:
    active = [(getattr(found, name), name, *rest) for name, *rest in _BOUNDS]
    active = [limit for limit in active if limit[0] is not None]
    if not active:
        return check

    def bounded(value: Any) -> Any:
        value = check(value)
        for bound, name, kind, words, holds in active:
            if not holds(value, bound):
                raise _fail(kind, f"Input should be {words} {bound}", value, **{name: bound})
        return value

    return bounded


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _fail("string_type", "Input should be a valid string", value)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail("finite_number", "Input should be a finite number", value)
        if not value.is_integer():
            msg = "Input should be a valid integer, got a number with a fractional part"
            raise _fail("int_from_float", msg, value)
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            if _INTEGRAL_TEXT.fullmatch(text):
                return int(text.split(".")[0])
        msg = "Input should be a valid integer, unable to parse string as an integer"
        raise _fail("int_parsing", msg, value)
    raise _fail("int_type", "Input should be a valid integer", value)


def _float(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            msg = "Input should be a valid number, unable to parse string as a number"
            raise _fail("float_parsing", msg, value) from None
    raise _fail("float_type", "Input should be a valid number", value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and (value.lower() in _TRUE or value.lower() in _FALSE):
        return value.lower() in _TRUE
    if isinstance(value, int | str) or (isinstance(value, float) and value.is_integer()):
        msg = "Input should be a valid boolean, unable to interpret input"
        raise _fail("bool_parsing", msg, value)
    raise _fail("bool_type", "Input should be a valid boolean", value)


_SCALARS: dict[Any, Check] = {str: _str, int: _int, float: _float, bool: _bool}
