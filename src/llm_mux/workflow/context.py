"""The template context of a run (SPEC §3): args, steps, env, team, ecosystem, workflow.

The run-wide part is built once; each step adds a ``steps`` view limited to its ancestors
(O(1) to create, so a 500-step chain costs nothing quadratic), and each for_each item adds
``item`` and ``loop``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from llm_mux.errors import UsageError, did_you_mean
from llm_mux.workflow.model import Workflow
from llm_mux.workflow.results import StepResult


def parse_arg_words(words: Sequence[str]) -> dict[str, str]:
    """``NAME=value`` words → a dict (the last of repeated names wins)."""
    args: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name.strip():
            raise UsageError(
                f"invalid workflow argument {word!r}: expected NAME=value",
                hint="pass workflow arguments as NAME=value after the workflow name",
            )
        args[name.strip()] = value
    return args


def resolve_args(workflow: Workflow, given: Mapping[str, str]) -> dict[str, str]:
    """Given args checked against ``[args]``, with defaults applied.

    An unknown name or a missing required arg is a :class:`UsageError` (exit 2). A declared
    optional arg without a default is ``""``, so ``args.x | default('y')`` works. A workflow
    that declares no ``[args]`` at all takes any ``NAME=value`` (the seed's examples use
    ``{{ args.file }}`` without declaring it).
    """
    declared = workflow.args
    if not declared:
        return dict(given)
    for name in given:
        if name not in declared:
            raise _unknown_arg(workflow, name)
    missing = [n for n, a in declared.items() if a.required and n not in given]
    if missing:
        raise _missing_args(workflow, missing)
    values = {n: a.default_text() or "" for n, a in declared.items()}
    values.update(given)
    return values


def _unknown_arg(workflow: Workflow, name: str) -> UsageError:
    known = ", ".join(workflow.args) or "none"
    return UsageError(
        f"unknown argument '{name}' for workflow '{workflow.name}'"
        f"{did_you_mean(name, workflow.args)}; known arguments: {known}"
    )


def _missing_args(workflow: Workflow, missing: list[str]) -> UsageError:
    lines = []
    for name in missing:
        description = workflow.args[name].description
        lines.append(f"'{name}'" + (f" ({description})" if description else ""))
    plural = "s" if len(missing) > 1 else ""
    return UsageError(
        f"missing required argument{plural} for workflow '{workflow.name}': " + ", ".join(lines),
        hint="pass " + " ".join(f"{n}=VALUE" for n in missing) + " after the workflow name",
    )


class StepsView(Mapping[str, StepResult]):
    """The ``steps`` a step may read: results of its ancestors only (a bitset filter)."""

    __slots__ = ("_allowed", "_index", "_results")

    def __init__(
        self, results: Mapping[str, StepResult], index: Mapping[str, int], allowed: int
    ) -> None:
        self._results, self._index, self._allowed = results, index, allowed

    def _visible(self, name: str) -> bool:
        position = self._index.get(name)
        return position is not None and bool(self._allowed >> position & 1)

    def __getitem__(self, name: str) -> StepResult:
        if not self._visible(name):
            raise KeyError(name)
        return self._results[name]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._results if self._visible(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._visible(name) and name in self._results


def base_context(
    workflow: Workflow,
    args: Mapping[str, str],
    *,
    team: Any = "",
    ecosystem: Any = None,
    memory: Any = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The run-wide template context."""
    return {
        "args": dict(args),
        "env": dict(os.environ if environ is None else environ),
        "team": team,
        "ecosystem": ecosystem,
        "workflow": {
            "name": workflow.name,
            "description": workflow.description,
            "version": workflow.version or "",
        },
        "memory": memory,
    }


def with_steps(base: Mapping[str, Any], steps: Mapping[str, StepResult]) -> dict[str, Any]:
    return {**base, "steps": steps}


def with_item(context: Mapping[str, Any], item: Any, index: int, length: int) -> dict[str, Any]:
    """The context of for_each item ``index`` (0-based) of ``length``."""
    loop = {
        "index": index + 1,
        "index0": index,
        "first": index == 0,
        "last": index == length - 1,
        "length": length,
    }
    return {**context, "item": item, "loop": loop}
