"""The store step's item models: every field checked, every problem of an item reported.

Strict pydantic models, imported only when a store step validates its input, so commands
that never store do not pay for pydantic.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from llm_mux.memory.database import utf8_safe
from llm_mux.memory.ingest import (
    EntityItem,
    FactItem,
    RelationshipItem,
    clean_json,
    clean_text,
    short_repr,
    type_name,
)


def problem(error: Any) -> str:
    """One field's problem in our words."""
    name, value = error["loc"][0], error["input"]
    if error["type"] == "string_type":
        return f"field '{name}' must be a string, got {type_name(value)}"
    if error["type"] == "dict_type":
        return f"field '{name}' must be an object, got {type_name(value)}"
    if name == "confidence":
        return f"field 'confidence' must be a number from 0 to 1, got {short_repr(value)}"
    return str(error["msg"])


def _missing_is_an_error(value: object, info: ValidationInfo) -> object:
    if value is None:
        raise PydanticCustomError("missing", f"missing field '{_alias(info)}'")
    return value


def _not_empty(value: str, info: ValidationInfo) -> str:
    if not value.strip():
        raise PydanticCustomError("empty", f"field '{_alias(info)}' must not be empty")
    return clean_text(value)


def _alias(info: ValidationInfo) -> str:
    name = info.field_name or ""
    return {"from_project": "from", "to_project": "to"}.get(name, name)


def _default_when_null(default: object) -> BeforeValidator:
    return BeforeValidator(lambda value: default if value is None else value)


def _json_properties(value: dict[str, Any]) -> dict[str, Any]:
    try:
        cleaned = {utf8_safe(str(k)): clean_json(v) for k, v in value.items()}
        json.dumps(cleaned)
    except RecursionError:
        raise PydanticCustomError("nested", "field 'properties' is nested too deeply") from None
    return cleaned


Required = Annotated[
    str, BeforeValidator(_missing_is_an_error), AfterValidator(_not_empty), Field(None)
]
Text = Annotated[str, _default_when_null(""), AfterValidator(clean_text), Field(None)]
Confidence = Annotated[float, _default_when_null(1.0), Field(None, ge=0, le=1, allow_inf_nan=False)]
Properties = Annotated[
    dict[str, Any], _default_when_null({}), AfterValidator(_json_properties), Field(None)
]


class _Item(BaseModel):
    # other fields are ignored (SPEC 5); null counts as absent; no value is coerced
    model_config = ConfigDict(
        extra="ignore", strict=True, validate_default=True, frozen=True, defer_build=True
    )


class _Fact(_Item):
    project: Required
    fact: Required
    source: Required
    confidence: Confidence
    category: Text
    source_type: Text

    def item(self) -> FactItem:
        return FactItem(**self.model_dump())


class _Relationship(_Item):
    from_project: Annotated[Required, Field(alias="from")]
    to_project: Annotated[Required, Field(alias="to")]
    type: Required
    evidence: Text

    def item(self) -> RelationshipItem:
        return RelationshipItem(**self.model_dump())


class _Entity(_Item):
    entity_type: Required
    entity_name: Required
    project: Text
    properties: Properties
    source: Text
    source_type: Text
    confidence: Confidence

    def item(self) -> EntityItem:
        return EntityItem(**self.model_dump())


MODELS: dict[str, type[_Fact | _Relationship | _Entity]] = {
    "facts": _Fact,
    "relationships": _Relationship,
    "entities": _Entity,
}
