"""The memory database of llm-mux: what store steps found, read back by templates and the CLI.

``parse_store_input`` turns a store step's text into a validated :class:`StorePayload`;
:class:`MemoryStore` writes it in one transaction and lists it back; :class:`MemoryReader`
is the read-only ``memory`` object of templates.
"""

from __future__ import annotations

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
