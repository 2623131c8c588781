"""Extract and validate the JSON a `store` step hands to the memory store.

The rendered prompt of a store step usually holds an LLM answer: the JSON may be the whole
text, sit in a fenced block, or be embedded in prose. We find it the way `output_schema`
does, then check every item before anything is written, so a bad answer stores nothing and
the error names each problem (``facts[2]: missing field 'source'``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from llm_mux.errors import StoreError
from llm_mux.memory.database import utf8_safe
from llm_mux.values import Value, field

KINDS = ("facts", "relationships", "entities")
MAX_REPORTED = 100
_EXPECTED = 'expected a JSON object such as {"facts": [{"project": …, "fact": …, "source": …}]}'


class FactItem(Value):
    """One fact about a project; identified by (project, fact, source) within an ecosystem."""

    project: str
    fact: str
    source: str
    confidence: float = 1.0
    category: str = ""
    source_type: str = ""


class RelationshipItem(Value):
    """A directed link between two projects; identified by (from, to, type)."""

    from_project: str
    to_project: str
    type: str
    evidence: str = ""


class EntityItem(Value):
    """A named thing inside a project (a service, table, endpoint…) and its properties."""

    entity_type: str
    entity_name: str
    project: str = ""
    properties: Mapping[str, Any] = field(factory=dict)
    source: str = ""
    source_type: str = ""
    confidence: float = 1.0


class StorePayload(Value):
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
        problems.append(f"'{kind}' must be a list, got {type_name(value)}")
        return []
    from pydantic import ValidationError

    from llm_mux.memory.item_models import MODELS, problem

    model = MODELS[kind]
    items = []
    for index, raw in enumerate(value):
        where = f"{kind}[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be an object, got {type_name(raw)}")
            continue
        try:
            items.append(model.model_validate(raw).item())
        except ValidationError as exc:
            problems.extend(f"{where}: {problem(error)}" for error in exc.errors())
    return items


def clean_text(text: str) -> str:
    """Trim a key or text field; identity fields must not differ by stray whitespace."""
    return utf8_safe(text.strip())


def clean_json(value: object) -> object:
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {utf8_safe(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def type_name(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def short_repr(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
