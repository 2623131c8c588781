"""Templates: the sandboxed Jinja2 environment, shell-safe rendering, static references.

``render``/``evaluate`` serve prompts, ``if`` and ``for_each``; ``prepare_shell`` serves shell
``run`` templates, where each ``{{ }}`` reaches the command as exactly its value;
``step_references`` lets ``validate`` check that a template reads only its ancestors.
"""

from __future__ import annotations

from llm_mux.templates.environment import (
    FILTERS,
    available_names,
    check_expression,
    check_syntax,
    evaluate,
    render,
    shell_escape,
)
from llm_mux.templates.references import step_references
from llm_mux.templates.shell import ShellScript, check_shell_template, prepare_shell

__all__ = [
    "FILTERS",
    "ShellScript",
    "available_names",
    "check_expression",
    "check_shell_template",
    "check_syntax",
    "evaluate",
    "prepare_shell",
    "render",
    "shell_escape",
    "step_references",
]
