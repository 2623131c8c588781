"""The step-kind registry: type name → the module that implements it.

A kind lives in its own module exposing ``KIND`` (a :class:`~.base.StepKind`); modules are
imported on first use, so a workflow of shell steps never imports the HTTP stack. A type
whose module is not installed gives a clear error instead of an ImportError.
"""

from __future__ import annotations

import importlib
import importlib.util
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


class KindUnavailable(LookupError):
    """A step type exists in the schema but its implementation is not available."""


def available(kind: str) -> bool:
    """True when ``kind``'s module can be imported."""
    module = KINDS.get(kind)
    return module is not None and importlib.util.find_spec(module) is not None


def get_kind(kind: str) -> StepKind:
    """The implementation of ``kind``; :class:`KindUnavailable` when there is none."""
    found = _loaded.get(kind)
    if found is not None:
        return found
    if not available(kind):
        raise KindUnavailable(f"step type '{kind}' is not available in this installation")
    module = importlib.import_module(KINDS[kind])
    found = cast(StepKind, module.KIND)
    _loaded[kind] = found
    return found
