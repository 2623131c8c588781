"""Extract and validate the JSON a `store` step hands to the memory store.

The rendered prompt of a store step usually holds an LLM answer: the JSON may be the whole
text, sit in a fenced block, or be embedded in prose. We find it the way `output_schema`
does, then check every item before anything is written, so a bad answer stores nothing and
the error names each problem (``facts[2]: missing field 'source'``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_mux.errors import StoreError

KINDS = ("facts", "relationships", "entities")
MAX_REPORTED = 100
_SURROGATE = re.compile("[\ud800-\udfff]")
_EXPECTED = 'expected a JSON object such as {"facts": [{"project": …, "fact": …, "source": …}]}'


@dataclass(frozen=True)
class FactItem:
    """One fact about a project; identified by (project, fact, source) within an ecosystem."""

    project: str
    fact: str
    source: str
    confidence: float = 1.0
    category: str = ""
    source_type: str = ""


@dataclass(frozen=True)
class RelationshipItem:
    """A directed link between two projects; identified by (from, to, type)."""

    from_project: str
    to_project: str
    type: str
    evidence: str = ""


@dataclass(frozen=True)
class EntityItem:
    """A named thing inside a project (a service, table, endpoint…) and its properties."""

    entity_type: str
    entity_name: str
    project: str = ""
    properties: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    source_type: str = ""
    confidence: float = 1.0


@dataclass(frozen=True)
class StorePayload:
    """Validated items of one store step; stored in one transaction."""

    facts: tuple[FactItem, ...] = ()
    relationships: tuple[RelationshipItem, ...] = ()
    entities: tuple[EntityItem, ...] = ()

    def __len__(self) -> int:
        return len(self.facts) + len(self.relationships) + len(self.entities)


def parse_store_input(text: str) -> StorePayload:
    """Find the store JSON in ``text`` and validate it; raise StoreError listing every problem.

    The text may hold several documents (a parallel step's answers, joined): each is
    validated, and together they make one payload, stored in one transaction.
    """
    if not text.strip():
        raise StoreError(f"store input is empty; {_EXPECTED}")
    documents = extract_documents(text)
    if len(documents) == 1:
        return validate_document(documents[0])
    problems: list[str] = []
    payloads = []
    for number, document in enumerate(documents, 1):
        try:
            payloads.append(validate_document(document))
        except StoreError as exc:
            problems.append(f"document {number} of {len(documents)}: {exc.message}")
    if problems:
        raise StoreError("\n".join(problems))
    return StorePayload(
        facts=tuple(f for p in payloads for f in p.facts),
        relationships=tuple(r for p in payloads for r in p.relationships),
        entities=tuple(e for p in payloads for e in p.entities),
    )


def extract_documents(text: str) -> list[dict[str, Any]]:
    """Every store document in ``text``: the whole text when it is one, else each fenced
    block naming a known key, else each top-level embedded object naming one; when none
    does, the one :func:`extract_document` finds (or its error)."""
    from llm_mux.answer_json import NO_JSON, embedded, fenced, loads

    def documents(values: Iterable[Any]) -> list[dict[str, Any]]:
        return [v for v in values if isinstance(v, dict) and any(k in v for k in KINDS)]

    whole = loads(text)
    found = documents([whole]) if whole is not NO_JSON else []
    found = found or documents(fenced(text)) or documents(embedded(text))
    return found or [extract_document(text)]


def extract_document(text: str) -> dict[str, Any]:
    """The first JSON object the answer holds (whole text, fenced block, embedded, and the
    objects inside each, in document order) that names a known key."""
    from llm_mux.answer_json import candidates, nested

    seen_other: dict[str, Any] | None = None
    for candidate in candidates(text):
        for value in nested(candidate):
            if not isinstance(value, dict):
                continue
            if any(key in value for key in KINDS):
                return value
            seen_other = seen_other if seen_other is not None else value
    if seen_other is not None:
        keys = ", ".join(repr(k) for k in list(seen_other)[:10]) or "none"
        raise StoreError(
            "store input has none of 'facts', 'relationships', 'entities' "
            f"(the JSON object found has keys: {keys}); {_EXPECTED}"
        )
    raise StoreError(f"store input holds no JSON object; {_EXPECTED}")


def validate_document(document: Mapping[str, Any]) -> StorePayload:
    """Turn a decoded document into a payload, or raise StoreError naming every bad field."""
    problems: list[str] = []
    parsed = {kind: _validate_list(document, kind, problems) for kind in KINDS}
    if problems:
        raise StoreError(_problem_report(problems))
    return StorePayload(
        facts=tuple(parsed["facts"]),
        relationships=tuple(parsed["relationships"]),
        entities=tuple(parsed["entities"]),
    )


def _problem_report(problems: list[str]) -> str:
    shown = problems[:MAX_REPORTED]
    more = len(problems) - len(shown)
    tail = [f"… and {more} more problems"] if more > 0 else []
    noun = "problem" if len(problems) == 1 else "problems"
    header = f"invalid store input, nothing stored ({len(problems)} {noun}):"
    return "\n".join([header, *(f"  {p}" for p in shown), *tail])


def _validate_list(document: Mapping[str, Any], kind: str, problems: list[str]) -> list[Any]:
    value = document.get(kind)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"'{kind}' must be a list, got {_type_name(value)}")
        return []
    build = _BUILDERS[kind]
    items = []
    for index, raw in enumerate(value):
        if not isinstance(raw, dict):
            problems.append(f"{kind}[{index}]: must be an object, got {_type_name(raw)}")
            continue
        item = build(_Fields(raw, f"{kind}[{index}]", problems))
        if item is not None:
            items.append(item)
    return items


class _Fields:
    """Typed access to one item's fields, recording each problem instead of stopping."""

    def __init__(self, raw: Mapping[str, Any], where: str, problems: list[str]) -> None:
        self.raw = raw
        self.where = where
        self.problems = problems
        self.start = len(problems)

    @property
    def ok(self) -> bool:
        return len(self.problems) == self.start

    def fail(self, message: str) -> None:
        self.problems.append(f"{self.where}: {message}")

    def required(self, name: str) -> str:
        value = self.raw.get(name)
        if value is None:
            self.fail(f"missing field '{name}'")
        elif isinstance(value, str) and not value.strip():
            self.fail(f"field '{name}' must not be empty")
        return self.text(name)

    def text(self, name: str) -> str:
        value = self.raw.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(f"field '{name}' must be a string, got {_type_name(value)}")
            return ""
        return _clean(value)

    def confidence(self) -> float:
        value = self.raw.get("confidence")
        if value is None:
            return 1.0
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or not math.isfinite(value) or not 0 <= value <= 1:
            self.fail(f"field 'confidence' must be a number from 0 to 1, got {_short(value)}")
            return 1.0
        return float(value)

    def properties(self) -> dict[str, Any]:
        value = self.raw.get("properties")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"field 'properties' must be an object, got {_type_name(value)}")
            return {}
        try:
            cleaned: dict[str, Any] = _clean_json(value)  # type: ignore[assignment]
            json.dumps(cleaned)
        except RecursionError:
            self.fail("field 'properties' is nested too deeply")
            return {}
        return cleaned


def _fact(f: _Fields) -> FactItem | None:
    item = FactItem(
        project=f.required("project"),
        fact=f.required("fact"),
        source=f.required("source"),
        confidence=f.confidence(),
        category=f.text("category"),
        source_type=f.text("source_type"),
    )
    return item if f.ok else None


def _relationship(f: _Fields) -> RelationshipItem | None:
    item = RelationshipItem(
        from_project=f.required("from"),
        to_project=f.required("to"),
        type=f.required("type"),
        evidence=f.text("evidence"),
    )
    return item if f.ok else None


def _entity(f: _Fields) -> EntityItem | None:
    item = EntityItem(
        entity_type=f.required("entity_type"),
        entity_name=f.required("entity_name"),
        project=f.text("project"),
        properties=f.properties(),
        source=f.text("source"),
        source_type=f.text("source_type"),
        confidence=f.confidence(),
    )
    return item if f.ok else None


_BUILDERS: dict[str, Callable[[_Fields], Any]] = {
    "facts": _fact,
    "relationships": _relationship,
    "entities": _entity,
}


def _clean(text: str) -> str:
    """Trim a key or text field; identity fields must not differ by stray whitespace."""
    return utf8_safe(text.strip())


def utf8_safe(text: str) -> str:
    """Replace lone surrogates (valid in JSON escapes, not in UTF-8) with U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


def _clean_json(value: object) -> object:
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {utf8_safe(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
