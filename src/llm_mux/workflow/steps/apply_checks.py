"""The apply step's static checks: what ``validate`` reports before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llm_mux.errors import ApplyError
from llm_mux.workflow.steps.base import CheckEnv

if TYPE_CHECKING:
    from llm_mux.workflow.model import ApplyStep

_STATIC_ROOT = Path("/nonexistent-llm-mux-project")  # lexical path checks before any run


def check_apply(step: ApplyStep, env: CheckEnv) -> list[tuple[str, str]]:
    """Problems ``validate`` reports for an apply step (source references are checked
    generically, with the other ``steps.X`` references)."""
    problems = inline_problems(step) if step.edits is not None else []
    if step.verify_retries:
        problems += retry_problems(step, env)
    elif step.verify_retry_prompt is not None:
        problems.append(
            ("verify_retry_prompt", "verify_retry_prompt has no effect without verify_retries")
        )
    return problems


def inline_problems(step: ApplyStep) -> list[tuple[str, str]]:
    """Malformed inline edits, and paths that are refused whatever the project holds."""
    from llm_mux.apply import Replace, edits_from_inline
    from llm_mux.apply.confine import confine

    try:
        edits = edits_from_inline(step.edits or [])
    except ApplyError as exc:
        return [("edits", exc.message)]
    problems = []
    for number, edit in enumerate(edits, 1):
        if not isinstance(edit, Replace):
            continue
        try:  # symlinks are resolved at run time, in the real project
            confine(_STATIC_ROOT, edit.path, step.allow_paths)
        except ApplyError as exc:
            problems.append(("edits", f"edit {number}: {exc.message}"))
    return problems


def retry_problems(step: ApplyStep, env: CheckEnv) -> list[tuple[str, str]]:
    """``verify_retries`` needs a verify command and a query step to ask again."""
    key = "verify_retries"
    if step.source_step is None:
        return [(key, "verify_retries asks the source step again; inline edits have none")]
    problems = []
    source = env.workflow.step(step.source_step)
    if source is not None and source.KIND != "query":
        problems.append(
            (
                key,
                f"verify_retries asks the source step again, but '{source.name}' is a "
                f"{source.KIND} step; only a query step can be asked again",
            )
        )
    elif source is not None and source.for_each is not None:
        problems.append((key, f"verify_retries cannot ask '{source.name}' again: it has for_each"))
    team_verify = env.team.verify if env.team is not None else None
    if not (step.verify if step.verify is not None else team_verify or "").strip():
        problems.append(
            (
                key,
                "verify_retries has no effect without a verify command (set verify, "
                "or run with a team that has one)",
            )
        )
    return problems
