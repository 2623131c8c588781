"""Templates: the sandboxed Jinja2 environment, shell-safe rendering, static references.

``render``/``evaluate`` serve prompts, ``if`` and ``for_each``; ``prepare_shell`` serves shell
``run`` templates, where each ``{{ }}`` reaches the command as exactly its value;
``step_references`` lets ``validate`` check that a template reads only its ancestors.
Jinja is imported only when a template holds markup (see :mod:`llm_mux.templates.plain`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_mux.templates.plain import is_plain, plain_text

if TYPE_CHECKING:
    from llm_mux.templates.environment import (
        FILTERS,
        available_names,
        check_expression,
        evaluate,
        shell_escape,
    )
    from llm_mux.templates.shell import ShellScript, check_shell_template, prepare_shell

__all__ = [
    "FILTERS",
    "ShellScript",
    "available_names",
    "check_expression",
    "check_shell_template",
    "check_syntax",
    "evaluate",
    "is_plain",
    "prepare_shell",
    "render",
    "shell_escape",
    "step_references",
]

_LAZY = {
    "FILTERS": "environment",
    "available_names": "environment",
    "check_expression": "environment",
    "evaluate": "environment",
    "shell_escape": "environment",
    "ShellScript": "shell",
    "check_shell_template": "shell",
    "prepare_shell": "shell",
}


def render(template: str, context: Mapping[str, Any], *, where: str = "") -> str:
    """Render a template; undefined names and bad values are TemplateErrors."""
    if is_plain(template):
        return plain_text(template)
    from llm_mux.templates.environment import render as render_jinja

    return render_jinja(template, context, where=where)


def check_syntax(template: str, *, where: str = "") -> None:
    """Raise a TemplateError naming the line when the template does not parse."""
    if not is_plain(template):
        from llm_mux.templates.environment import check_syntax as check_jinja

        check_jinja(template, where=where)


def step_references(template_or_expression: str, *, expression: bool = False) -> set[str]:
    """Names X read as ``steps.X``, ``steps['X']`` or ``steps["X"]``."""
    if not expression and is_plain(template_or_expression):
        return set()
    from llm_mux.templates.references import step_references as references

    return references(template_or_expression, expression=expression)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_mux.templates' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"llm_mux.templates.{module}"), name)
