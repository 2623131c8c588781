"""The memory database of llm-mux: what store steps found, read back by templates and the CLI.

``parse_store_input`` turns a store step's text into a validated :class:`StorePayload`;
:class:`MemoryStore` writes it in one transaction and lists it back; :class:`MemoryReader`
is the read-only ``memory`` object of templates.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_mux.memory.ingest import (
        EntityItem,
        FactItem,
        RelationshipItem,
        StorePayload,
        parse_store_input,
    )
    from llm_mux.memory.reader import MemoryReader
    from llm_mux.memory.store import (
        DEFAULT_ECOSYSTEM,
        MemoryStore,
        StoreCounts,
        ecosystem_key,
        memory_db_path,
    )

# name -> module: loaded on first use, so recording a run does not load the reader or
# the store step's parsing
_HOMES = {
    "EntityItem": "ingest",
    "FactItem": "ingest",
    "RelationshipItem": "ingest",
    "StorePayload": "ingest",
    "parse_store_input": "ingest",
    "MemoryReader": "reader",
    "DEFAULT_ECOSYSTEM": "store",
    "MemoryStore": "store",
    "StoreCounts": "store",
    "ecosystem_key": "store",
    "memory_db_path": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'llm_mux.memory' has no attribute {name!r}")
    return getattr(importlib.import_module(f"llm_mux.memory.{home}"), name)


__all__ = [
    "DEFAULT_ECOSYSTEM",
    "EntityItem",
    "FactItem",
    "MemoryReader",
    "MemoryStore",
    "RelationshipItem",
    "StoreCounts",
    "StorePayload",
    "ecosystem_key",
    "memory_db_path",
    "parse_store_input",
]
