"""``type = "input"``: ask the user a question.

Interactive only when the CLI says so (a terminal on stdin, console output); otherwise the
step takes its ``default``, or fails saying how to make the run non-interactive. With
``options`` the answer must be one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_mux.workflow.steps.base import CheckEnv, StepContext, StepFailed, StepKind, StepOutput

if TYPE_CHECKING:
    from llm_mux.workflow.model import InputStep


class InputKind:
    """The input step kind."""

    def check(self, ask: InputStep, env: CheckEnv) -> list[tuple[str, str]]:
        fixed = ask.default is not None and "{" not in ask.default
        if fixed and ask.options and ask.default not in ask.options:
            options = ", ".join(repr(o) for o in ask.options)
            return [("default", f"default {ask.default!r} is not one of the options {options}")]
        if len(set(ask.options)) != len(ask.options):
            return [("options", "options must not repeat")]
        return []

    async def run(self, ctx: StepContext[InputStep]) -> StepOutput:
        step = ctx.step
        prompt = await ctx.render(step.prompt, "prompt")
        default = None if step.default is None else await ctx.render(step.default, "default")
        ask = ctx.services.ask
        answer = None if ask is None else await ask(prompt, step.options, default)
        if answer is None:
            answer = _non_interactive(ctx.label, default)
        if step.options and answer not in step.options:
            options = ", ".join(repr(o) for o in step.options)
            raise StepFailed(f"answer {answer!r} is not one of {options}", retryable=False)
        return StepOutput(output=answer)


def _non_interactive(label: str, default: str | None) -> str:
    if default is None:
        raise StepFailed(
            f"input step '{label}' needs an answer, but the run is not interactive "
            "(stdin is not a terminal, or the output is json/quiet) and the step has no "
            'default; set default = "…" or run it in a terminal',
            retryable=False,
        )
    return default


KIND: StepKind[InputStep] = InputKind()
