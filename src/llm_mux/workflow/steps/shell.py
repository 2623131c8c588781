"""``type = "shell"``: run ``sh -c`` in the project directory, injection-safe by construction.

The ``run`` template goes through :func:`~llm_mux.templates.prepare_shell`: each ``{{ }}``
reaches the command as exactly its value, through an environment variable or a private
file. With ``defaults.command_wrapper`` the whole ``sh -c …`` command is passed to the
wrapper as ONE argument (``shlex.join``), so it is never evaluated twice. Output is stdout
(trailing newlines removed, like ``$(…)``); a non-zero exit fails the step with the exit
code and the tail of stderr.
"""

from __future__ import annotations

import codecs
import shlex
from typing import TYPE_CHECKING

from llm_mux.errors import LlmMuxError
from llm_mux.process import ProcessOutcome, ProcessRequest, run_process
from llm_mux.workflow.steps.base import CheckEnv, StepContext, StepFailed, StepKind, StepOutput

if TYPE_CHECKING:
    from llm_mux.templates import ShellScript
    from llm_mux.workflow.model import ShellStep, Step

_NEWLINES = b"\r\n"


def stdout_text(data: bytes) -> str:
    """stdout as text without trailing newlines, decoded without copying the bytes first."""
    end = len(data)
    while end and data[end - 1] in _NEWLINES:
        end -= 1
    if end == len(data):
        return data.decode("utf-8", errors="replace")
    return codecs.utf_8_decode(memoryview(data)[:end], "replace", True)[0]


def wrap(argv: tuple[str, ...], wrapper: str | None) -> tuple[str, ...]:
    """``argv`` run through ``command_wrapper`` as one argument, or unchanged."""
    if not wrapper:
        return argv
    return (*shlex.split(wrapper), shlex.join(argv))


async def prepare(ctx: StepContext[Step], template: str, field_name: str) -> ShellScript:
    """Render a shell template of the step; a NUL byte in a value names the step."""
    from llm_mux.templates import ShellScript, is_plain, prepare_shell

    if not is_plain(template):
        where = ctx.where(field_name)
        script = await ctx.off_loop(
            field_name,
            lambda: prepare_shell(template, ctx.context, where=where),
            ShellScript.cleanup,
        )
    else:  # literal shell text renders as itself: skip the renderer on the hot path
        script = ShellScript(template)
    if "\x00" in script.script or any("\x00" in v for v in script.env.values()):
        script.cleanup()
        raise StepFailed(
            f"step '{ctx.label}': a value in {field_name} contains a NUL byte, which no "
            "command can receive",
            retryable=False,
        )
    return script


async def run_script(ctx: StepContext[Step], script: ShellScript) -> ProcessOutcome:
    """Run a prepared script in the project directory through the one process runner."""
    services = ctx.services
    argv = wrap(script.argv(), services.config.defaults.command_wrapper)
    request = ProcessRequest(
        argv,
        cwd=services.project_dir,
        env=script.environ(),
        max_output=services.max_output,
    )
    try:
        return await run_process(request)
    except ValueError as exc:  # e.g. an embedded NUL byte the checks above did not see
        raise StepFailed(f"step '{ctx.label}': cannot start the command: {exc}") from None
    except LlmMuxError as exc:
        raise StepFailed(exc.message) from None


class ShellKind:
    """The shell step kind."""

    def check(self, step: ShellStep, env: CheckEnv) -> list[tuple[str, str]]:
        return []  # the run template is checked generically (check_shell_template)

    async def run(self, ctx: StepContext[ShellStep]) -> StepOutput:
        with await prepare(ctx, ctx.step.run, "run") as script:
            outcome = await run_script(ctx, script)
        output = StepOutput(output=stdout_text(outcome.stdout), exit_code=outcome.exit_code)
        if outcome.exit_code != 0:
            raise StepFailed(_exit_message(outcome), partial=output)
        return output


def _exit_message(outcome: ProcessOutcome) -> str:
    code = outcome.exit_code
    reason = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
    tail = outcome.stderr_tail()
    return f"command {reason}" + (f": {tail}" if tail else "")


KIND: StepKind[ShellStep] = ShellKind()
