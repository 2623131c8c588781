"""Pieces of the apply step kind: its static checks, the verify command, the result state.

Kept apart from :mod:`.apply` so the control flow there (apply, verify, roll back, ask
again) reads in one screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mux.apply import VerifyResult
from llm_mux.errors import ApplyError
from llm_mux.secrets import redact
from llm_mux.workflow.steps.base import CheckEnv, StepContext, StepFailed, StepOutput
from llm_mux.workflow.steps.shell import prepare, run_script

if TYPE_CHECKING:
    from llm_mux.templates import ShellScript
    from llm_mux.workflow.model import ApplyStep

OUTPUT_TAIL = 10_000  # characters of verify output kept (the end is where failures are)
ERROR_TAIL = 2_000  # characters of verify output quoted in the step's error
_STATIC_ROOT = Path("/nonexistent-llm-mux-project")  # lexical path checks before any run
_ORIGINAL_PROMPT = re.compile(r"\boriginal_prompt\b")


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


# --- verify ---------------------------------------------------------------------------------


@dataclass
class VerifyCommand:
    """The prepared verify script and the text it was written as (for messages)."""

    script: ShellScript
    text: str

    async def run(self, ctx: StepContext) -> VerifyResult:
        """Run in the project directory; a command that cannot run is a failed verify."""
        try:
            outcome = await run_script(ctx, self.script)
        except StepFailed as exc:
            return VerifyResult(False, -1, redact(exc.message))
        output = tail(combined(outcome.stdout, outcome.stderr), OUTPUT_TAIL)
        return VerifyResult(outcome.exit_code == 0, outcome.exit_code, redact(output))

    def cleanup(self) -> None:
        self.script.cleanup()


async def verify_command(ctx: StepContext, step: ApplyStep) -> VerifyCommand | None:
    """The step's ``verify`` (rendered for the shell), else the team's, else none.

    ``verify = ""`` turns verification off, also when a team names a command.
    """
    from llm_mux.templates import ShellScript

    if step.verify is not None:
        if not step.verify.strip():
            return None
        return VerifyCommand(await prepare(ctx, step.verify, "verify"), step.verify)
    team = ctx.services.team
    command = team.verify if team is not None else None
    if not command or not command.strip():
        return None
    return VerifyCommand(ShellScript(command), command)  # config text, not a template


def combined(stdout: bytes, stderr: bytes) -> str:
    parts = [data.decode("utf-8", "replace").rstrip("\n") for data in (stdout, stderr) if data]
    return "\n".join(parts)


def tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def describe_exit(result: VerifyResult) -> str:
    code = result.exit_code
    if code > 0:
        return f"exit code {code}"
    return "did not finish" if code == -1 else f"killed by signal {-code}"


# --- retry prompt ---------------------------------------------------------------------------


async def custom_retry_prompt(
    ctx: StepContext, template: str, original: str, edits: str, verify_output: str
) -> str:
    """``verify_retry_prompt`` rendered with ``verify_output``, ``edits``, ``original_prompt``.

    A template that uses ``original_prompt`` is the whole prompt; otherwise it follows the
    original prompt, as the default text does.
    """
    values = {
        "verify_output": verify_output.strip() or "(no output)",
        "edits": edits.strip(),
        "original_prompt": original,
    }
    body = (await ctx.render(template, "verify_retry_prompt", values)).strip()
    if _ORIGINAL_PROMPT.search(template):
        return body + "\n"
    return f"{original.rstrip()}\n\n{body}\n"


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
