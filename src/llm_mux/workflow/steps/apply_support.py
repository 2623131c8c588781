"""Pieces of the apply step kind: its static checks and the result state.

Kept apart from :mod:`.apply` so the control flow there (apply, verify, roll back, ask
again) reads in one screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mux.errors import ApplyError
from llm_mux.workflow.steps.base import CheckEnv, StepOutput
from llm_mux.workflow.steps.verify import VerifyResult, describe_exit

if TYPE_CHECKING:
    from llm_mux.workflow.model import ApplyStep

ERROR_TAIL = 2_000  # characters of verify output quoted in the step's error
_STATIC_ROOT = Path("/nonexistent-llm-mux-project")  # lexical path checks before any run


# --- static checks --------------------------------------------------------------------------


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
    from llm_mux.apply.patch import confine

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


# --- result ---------------------------------------------------------------------------------


@dataclass
class ApplyState:
    """What the step reports: the last attempt that wrote files, and how verify went."""

    attempts: int = 0
    applied: list[str] = field(default_factory=list)
    verify_output: str = ""
    verified: VerifyResult | None = None
    rolled_back: bool = False
    note: str = ""  # why nothing was applied, when nothing was

    def wrote(self, paths: list[str]) -> None:
        self.applied, self.verified, self.rolled_back = list(paths), None, False

    def extra(self) -> dict[str, Any]:
        return {
            "applied": list(self.applied),
            "verify_output": self.verify_output,
            "attempts": self.attempts,
            "rolled_back": self.rolled_back,
        }

    def summary(self) -> str:
        """One line: which files, how verify went, whether the edits were undone."""
        if not self.applied and self.verified is None:
            return f"nothing applied: {self.note}" if self.note else "nothing applied"
        parts = [f"applied: {', '.join(self.applied)}" if self.applied else "nothing applied"]
        if self.verified is None:
            parts.append("not verified (no verify command)")
        elif self.verified.ok:
            parts.append("verify passed")
        else:
            parts.append(f"verify failed ({describe_exit(self.verified)})")
        if self.rolled_back:
            parts.append("rolled back")
        text = "; ".join(parts)
        return text + (f" (after {self.attempts} attempts)" if self.attempts > 1 else "")

    def output(self) -> StepOutput:
        return StepOutput(output=self.summary(), extra=self.extra())
