"""The apply step's verify command and the prompt that asks the model again.

The command is the step's ``verify`` (a shell template, run like a shell step) or the team's
(config text, run as written). A command that cannot run is a failed verify, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_mux.secrets import redact
from llm_mux.workflow.steps.base import StepContext, StepFailed
from llm_mux.workflow.steps.shell import prepare, run_script

if TYPE_CHECKING:
    from llm_mux.templates import ShellScript
    from llm_mux.workflow.model import ApplyStep, Step

OUTPUT_TAIL = 10_000  # characters of verify output kept (the end is where failures are)
_ORIGINAL_PROMPT = re.compile(r"\boriginal_prompt\b")

DEFAULT_RETRY_PROMPT = """\
Your previous edits were applied, but verification failed, so they were rolled back.
The files are back to their original state.

Your previous edits:
{{ edits }}

Output of the verify command:
{{ verify_output }}

Send corrected edits for the original files, in the same format."""


@dataclass(frozen=True)
class VerifyResult:
    """``output`` is the tail of stdout followed by stderr (or why the command did not run)."""

    ok: bool
    exit_code: int
    output: str


@dataclass
class VerifyCommand:
    """The prepared verify script and the text it was written as (for messages)."""

    script: ShellScript
    text: str

    async def run(self, ctx: StepContext[Step]) -> VerifyResult:
        """Run in the project directory; a command that cannot run is a failed verify."""
        try:
            outcome = await run_script(ctx, self.script)
        except StepFailed as exc:
            return VerifyResult(False, -1, redact(exc.message))
        output = tail(combined(outcome.stdout, outcome.stderr), OUTPUT_TAIL)
        return VerifyResult(outcome.exit_code == 0, outcome.exit_code, redact(output))

    def cleanup(self) -> None:
        self.script.cleanup()


async def verify_command(ctx: StepContext[Step], step: ApplyStep) -> VerifyCommand | None:
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


async def retry_prompt(
    ctx: StepContext[Step],
    template: str | None,
    original: str,
    edits: str,
    verify_output: str,
) -> str:
    """The prompt for another try: the step's ``verify_retry_prompt`` or the default text,
    rendered with ``verify_output``, ``edits`` and ``original_prompt`` (values, never
    rendered again).

    A template that uses ``original_prompt`` is the whole prompt; otherwise it follows the
    original prompt.
    """
    values = {
        "verify_output": verify_output.strip() or "(no output)",
        "edits": edits.strip(),
        "original_prompt": original,
    }
    body = template if template is not None else DEFAULT_RETRY_PROMPT
    text = (await ctx.render(body, "verify_retry_prompt", values)).strip()
    if _ORIGINAL_PROMPT.search(body):
        return text + "\n"
    return f"{original.rstrip()}\n\n{text}\n"
