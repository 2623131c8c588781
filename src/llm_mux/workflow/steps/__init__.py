"""Step kinds: the implementation of each step model, loaded on first use.

The registry is :data:`llm_mux.workflow.model.STEP_MODELS`; each model names the module
that implements it (``IMPLEMENTATION``), which exposes ``KIND``, a
:class:`~.base.StepKind` over that model. Modules are imported on first use, so a workflow
of shell steps never imports the HTTP stack; one that fails to import fails loudly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar, cast

from llm_mux.workflow.steps.base import StepKind

if TYPE_CHECKING:
    from llm_mux.workflow.model import Step

S = TypeVar("S", bound="Step")

_loaded: dict[type[Step], StepKind[Step]] = {}


def get_kind(step: S) -> StepKind[S]:
    """The implementation of ``step``'s type."""
    model = type(step)
    found = _loaded.get(model)
    if found is None:
        module = importlib.import_module(model.IMPLEMENTATION)
        found = _loaded[model] = cast("StepKind[Step]", module.KIND)
    return found
