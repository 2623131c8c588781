"""What an apply step reports: the files its last attempt wrote and how verify went.

Kept apart from :mod:`.apply` so the control flow there (apply, verify, roll back, ask
again) reads in one screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_mux.workflow.steps.base import StepOutput
from llm_mux.workflow.steps.verify import VerifyResult, describe_exit

ERROR_TAIL = 2_000  # characters of verify output quoted in the step's error


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
