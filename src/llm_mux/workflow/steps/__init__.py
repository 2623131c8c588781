"""The step-kind registry: type name → the module that implements it.

A kind lives in its own module exposing ``KIND`` (a :class:`~.base.StepKind`); modules are
imported on first use, so a workflow of shell steps never imports the HTTP stack. A module
that fails to import fails the run loudly with its own error.
"""

from __future__ import annotations

import importlib
from typing import cast

from llm_mux.workflow.steps.base import StepKind

KINDS: dict[str, str] = {
    "shell": "llm_mux.workflow.steps.shell",
    "query": "llm_mux.workflow.steps.query",
    "input": "llm_mux.workflow.steps.input",
    "apply": "llm_mux.workflow.steps.apply",
    "store": "llm_mux.workflow.steps.store",
}

_loaded: dict[str, StepKind] = {}


def get_kind(kind: str) -> StepKind:
    """The implementation of ``kind`` (one of :data:`KINDS`, as the step model ensures)."""
    found = _loaded.get(kind)
    if found is None:
        module = importlib.import_module(KINDS[kind])
        found = _loaded[kind] = cast(StepKind, module.KIND)
    return found
