"""Workflows: TOML files of steps run as a DAG (SPEC §2).

``discover`` finds the file, ``model`` parses it, ``validate`` checks it and plans the DAG,
``runner`` runs it with one step kind per type (``steps/``), ``api`` ties them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_mux.workflow.api import arun_workflow, prepare, run_workflow

__all__ = ["arun_workflow", "prepare", "run_workflow"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from llm_mux.workflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'llm_mux.workflow' has no attribute {name!r}")
