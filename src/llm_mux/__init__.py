"""llm-mux: a multiplexer for LLMs.

The public API is small and pinned by a test; heavy modules load only when used, so
``import llm_mux`` stays cheap for the CLI's start-up.
"""

from llm_mux._version import __version__

TYPE_CHECKING = False  # not typing's: importing typing would cost `--version` a third
if TYPE_CHECKING:
    from typing import Any

    from llm_mux.config import load_config
    from llm_mux.workflow.api import run_workflow

__all__ = ["__version__", "load_config", "run_workflow"]


def __getattr__(name: str) -> "Any":
    if name == "load_config":
        from llm_mux.config import load_config

        return load_config
    if name == "run_workflow":
        from llm_mux.workflow.api import run_workflow

        return run_workflow
    raise AttributeError(f"module 'llm_mux' has no attribute {name!r}")
