"""The ``memory`` object templates see: read-only queries of the current ecosystem.

Templates call ``memory.facts(project='api', category='security')`` while rendering. The
reader keeps its store in private attributes (the Jinja sandbox refuses names starting with
``_``), so a template can read knowledge but never reach a method that writes. Every call
returns fresh plain dicts and lists; a missing database reads as empty and is not created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_mux.errors import TemplateError
from llm_mux.memory.store import MemoryStore, ecosystem_key

Row = dict[str, Any]


class MemoryReader:
    """Read-only view of one ecosystem's memory for templates (sync calls are fine there)."""

    __slots__ = ("_ecosystem", "_store")

    def __init__(self, store: MemoryStore, ecosystem: str | None) -> None:
        self._store = store
        self._ecosystem = ecosystem_key(ecosystem)

    def facts(
        self,
        project: str | None = None,
        category: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Facts of the ecosystem, most recently updated first."""
        return self._read(
            self._store.facts, project=project, category=category, search=search, limit=limit
        )

    def relationships(
        self,
        project: str | None = None,
        type: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Relationships touching ``project`` (either end), keys ``from_project``/``to_project``."""
        return self._read(
            self._store.relationships, project=project, type=type, search=search, limit=limit
        )

    def entities(
        self,
        project: str | None = None,
        entity_type: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Entities with their current ``properties`` dict."""
        return self._read(
            self._store.entities,
            project=project,
            entity_type=entity_type,
            search=search,
            limit=limit,
        )

    def _read(
        self, query: Callable[..., list[Row]], *, limit: object, **filters: object
    ) -> list[Row]:
        """``query`` of the store with the template's filters checked, in this ecosystem."""
        method = query.__name__
        texts = {name: _text(method, name, value) for name, value in filters.items()}
        return query(**texts, limit=_limit(method, limit), ecosystem=self._ecosystem)

    def __repr__(self) -> str:
        return f"<memory of ecosystem {self._ecosystem!r}>"


def _text(method: str, name: str, value: object) -> str | None:
    """Filters are text; numbers are accepted as their text, anything else is an error."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TemplateError(f"memory.{method}({name}=…) must be a string, got {type(value).__name__}")


def _limit(method: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise TemplateError(f"memory.{method}(limit=…) must be a non-negative integer, got {value!r}")
