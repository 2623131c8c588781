"""Static analysis of templates: which steps they read, and how a value was reached.

Both work on the Jinja AST, never on the text, so ``{{ "steps.x" }}`` is no reference and
``steps['x']`` is one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jinja2 import nodes

from llm_mux.templates.environment import parse


def step_references(template_or_expression: str, *, expression: bool = False) -> set[str]:
    """Names X read as ``steps.X``, ``steps['X']`` or ``steps["X"]``."""
    tree = parse(template_or_expression, expression=expression)
    found: set[str] = set()
    for node in _lookups(tree):
        base = node.node
        if isinstance(base, nodes.Name) and base.name == "steps":
            name = _looked_up(node)
            if isinstance(name, str):
                found.add(name)
    return found


def _lookups(tree: nodes.Node) -> Iterator[nodes.Getattr | nodes.Getitem]:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            yield node


def _looked_up(node: nodes.Getattr | nodes.Getitem) -> Any:
    """The attribute or constant key a lookup node uses (None when computed)."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const):
        return node.arg.value
    return None


def describe(node: nodes.Node) -> str | None:
    """Source-like text of a lookup chain (``steps.fetch``), or None if it is computed."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        base = describe(node.node)
        key = _looked_up(node)
        if base is None or key is None:
            return None
        if isinstance(key, str) and key.isidentifier():
            return f"{base}.{key}"
        return f"{base}[{key!r}]"
    return None


def owner_path(tree: nodes.Node, name: Any) -> str | None:
    """The text of the first expression on which ``name`` is looked up in ``tree``."""
    for node in _lookups(tree):
        key = _looked_up(node)
        if key == name and type(key) is type(name):
            text = describe(node.node)
            if text is not None:
                return text
    return None
