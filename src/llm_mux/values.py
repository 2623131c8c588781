"""Data classes whose methods are written once, not generated for each class.

``@dataclass`` writes the source of ``__init__``, ``__repr__``, ``__eq__`` (and for a frozen
class ``__hash__``, ``__setattr__``, ``__delattr__``) for every class and compiles it: about
0.7 ms a class here. A command imports some forty of them before doing anything, which was
a fifth of a ``run``'s start. A :class:`Value` behaves like a dataclass (fields from the
annotations, defaults, :func:`field` with a factory, positional or keyword construction,
field-wise ``==`` and ``repr``, frozen unless ``frozen=False``) with methods shared by all.

    class Usage(Value):
        input_tokens: int | None = None
        output_tokens: int | None = None

    class Run(Value, frozen=False, kw_only=True):
        steps: list[str] = field(factory=list)
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable
from typing import Any, TypeVar

V = TypeVar("V", bound="Value")


class _Missing:
    def __repr__(self) -> str:
        return "<required>"


MISSING: Any = _Missing()


class Slot:
    """One declared field: its default or factory, whether it shows and compares, and
    ``info`` that a subclass of :class:`Value` gives meaning to (validation rules)."""

    __slots__ = ("annotation", "compare", "default", "factory", "info", "name", "owner", "repr")

    def __init__(
        self,
        name: str,
        default: Any = MISSING,
        factory: Callable[[], Any] | None = None,
        info: Any = None,
        repr: bool = True,
        compare: bool = True,
        annotation: Any = Any,  # as written: often a string (postponed evaluation)
        owner: type | None = None,  # the class that declared the field
    ) -> None:
        self.name, self.default, self.factory, self.info = name, default, factory, info
        self.repr, self.compare = repr, compare
        self.annotation, self.owner = annotation, owner

    def type(self) -> Any:
        """The annotation evaluated where it was written (``typing.get_type_hints`` for one
        field, without its cost for every field of every class)."""
        if not isinstance(self.annotation, str) or self.owner is None:
            return self.annotation
        scope = vars(sys.modules[self.owner.__module__])
        return eval(self.annotation, scope, dict(vars(self.owner)))

    @property
    def required(self) -> bool:
        return self.default is MISSING and self.factory is None


class _Declared:
    """What :func:`field` leaves in a class body, read when the class is created."""

    __slots__ = ("slot",)

    def __init__(self, slot: Slot) -> None:
        self.slot = slot


def field(
    *,
    default: Any = MISSING,
    factory: Callable[[], Any] | None = None,
    repr: bool = True,
    compare: bool = True,
    info: Any = None,
) -> Any:
    """A field with a ``default`` or a ``factory`` (neither: required)."""
    return _Declared(Slot("", default, factory, info, repr, compare))


class FrozenValueError(AttributeError):
    """A frozen value's fields cannot change; make another with :func:`replace`."""


@typing.dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Value:
    """Base of data classes built without generated code (see the module's docstring).

    ``frozen`` and ``kw_only`` are given as class keywords; a subclass inherits its base's.
    """

    _value_fields: typing.ClassVar[tuple[Slot, ...]] = ()
    _value_kw_only: typing.ClassVar[bool] = False
    _value_frozen: typing.ClassVar[bool] = True

    def __init_subclass__(
        cls, *, frozen: bool | None = None, kw_only: bool | None = None, **rest: Any
    ) -> None:
        super().__init_subclass__(**rest)
        slots = {slot.name: slot for slot in cls._value_fields}
        for name, annotation in inspect.get_annotations(cls).items():
            if _is_class_var(annotation):
                continue
            value = cls.__dict__.get(name, MISSING)
            d = value.slot if isinstance(value, _Declared) else Slot(name, value)
            slots[name] = Slot(
                name, d.default, d.factory, d.info, d.repr, d.compare, annotation, owner=cls
            )
            if isinstance(value, _Declared):  # the class attribute is the default, as written
                if d.default is MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, d.default)
        cls._value_fields = tuple(slots.values())
        if kw_only is not None:
            cls._value_kw_only = kw_only
        if frozen is not None:
            cls._value_frozen = frozen

    def __init__(self, *args: Any, **values: Any) -> None:
        fields = self._value_fields
        if args:
            if self._value_kw_only or len(args) > len(fields):
                raise TypeError(f"{type(self).__name__}() takes {len(fields)} keyword arguments")
            for slot, arg in zip(fields, args, strict=False):
                if slot.name in values:
                    raise TypeError(f"{type(self).__name__}() got {slot.name!r} twice")
                values[slot.name] = arg
        for slot in fields:
            if slot.name in values:
                value = values.pop(slot.name)
            elif slot.factory is not None:
                value = slot.factory()
            elif slot.default is not MISSING:
                value = slot.default
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {slot.name!r}")
            object.__setattr__(self, slot.name, value)
        if values:
            unexpected = next(iter(values))
            raise TypeError(f"{type(self).__name__}() got an unexpected argument {unexpected!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if self._value_frozen:
            raise FrozenValueError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._value_frozen:
            raise FrozenValueError(f"cannot delete field {name!r}")
        object.__delattr__(self, name)

    def _compared(self) -> tuple[Any, ...]:
        return tuple(getattr(self, slot.name) for slot in self._value_fields if slot.compare)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Value)
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        if not self._value_frozen:  # a mutable value is unhashable, as with dataclasses
            raise TypeError(f"unhashable type: {type(self).__name__!r}")
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = (f"{s.name}={getattr(self, s.name)!r}" for s in self._value_fields if s.repr)
        return f"{type(self).__name__}({', '.join(shown)})"


def replace(value: V, **changes: Any) -> V:
    """A copy of ``value`` with ``changes`` (``dataclasses.replace`` for values)."""
    return type(value)(**{**as_dict(value), **changes})


def names(value: Value | type[Value]) -> list[str]:
    """The field names of a value or a value class, in declaration order."""
    return [slot.name for slot in value._value_fields]


def as_dict(value: Value) -> dict[str, Any]:
    """The fields of ``value`` by name (not recursive: nested values stay values)."""
    return {slot.name: getattr(value, slot.name) for slot in value._value_fields}


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar"))
    return typing.get_origin(annotation) is typing.ClassVar
