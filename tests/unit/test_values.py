"""Values behave like the dataclasses they replace: construction, freezing, equality."""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

import pytest

from llm_mux.values import FrozenValueError, Value, as_dict, field, names, replace

T = TypeVar("T")


class Point(Value):
    x: int
    y: int = 0
    tags: list[str] = field(factory=list)
    secret: str = field(default="", repr=False, compare=False)
    KIND: ClassVar[str] = "point"


class Counter(Value, frozen=False, kw_only=True):
    count: int = 0
    seen: list[int] = field(factory=list)


class Labelled(Point):
    label: str = "?"


class Box(Value, Generic[T]):
    item: T


def test_positional_keyword_defaults_and_factories() -> None:
    p = Point(1, tags=["a"])
    assert (p.x, p.y, p.tags, p.secret) == (1, 0, ["a"], "")
    assert Point(1).tags is not Point(1).tags  # a fresh list each time
    assert names(Point) == ["x", "y", "tags", "secret"]
    assert Point.KIND == "point" and "KIND" not in names(Point)
    assert as_dict(Point(2, 3)) == {"x": 2, "y": 3, "tags": [], "secret": ""}


def test_bad_arguments_fail_like_a_dataclass() -> None:
    with pytest.raises(TypeError, match="missing argument 'x'"):
        Point()
    with pytest.raises(TypeError, match="unexpected argument 'z'"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="'x' twice"):
        Point(1, x=2)
    with pytest.raises(TypeError):
        Point(1, 2, [], "", "extra")
    with pytest.raises(TypeError, match="keyword"):
        Counter(1)


def test_frozen_values_refuse_changes_and_hash_by_fields() -> None:
    p = Point(1, 2)
    with pytest.raises(FrozenValueError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(FrozenValueError):
        del p.y  # type: ignore[misc]
    assert p == Point(1, 2, secret="other")  # secret does not compare
    assert p != Point(1, 3) and p != (1, 2)
    assert len({Point(1, 2, ()), Point(1, 2, ())}) == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(Point(1, 2, ["a list is unhashable"]))
    assert repr(p) == "Point(x=1, y=2, tags=[])"


def test_mutable_values_change_and_are_unhashable() -> None:
    c = Counter()
    c.count += 1
    c.seen.append(1)
    assert c == Counter(count=1, seen=[1])
    with pytest.raises(TypeError, match="unhashable"):
        hash(c)


def test_subclasses_extend_fields_and_keep_settings() -> None:
    item = Labelled(1, 2, label="a")
    assert names(item) == ["x", "y", "tags", "secret", "label"]
    assert item != Point(1, 2)  # another class never compares equal
    with pytest.raises(FrozenValueError):
        item.label = "b"  # type: ignore[misc]
    assert Box[int](3).item == 3


def test_replace_makes_a_changed_copy() -> None:
    p = Point(1, 2, ["t"])
    q = replace(p, y=5)
    assert (q.x, q.y, q.tags, p.y) == (1, 5, ["t"], 2)
    with pytest.raises(TypeError):
        replace(p, nope=1)
