"""``llm-mux run WORKFLOW [NAME=value ...]``: run a workflow.

The workflow is checked before anything runs (exit 2 on any problem). Progress goes to
stderr; stdout gets the final output (console, quiet) or exactly one JSON document
(``--output json``, also when the run fails or is interrupted). Exit 1 when the run fails,
130/143 when interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Any

import click

from llm_mux.cli.completion import complete_workflow
from llm_mux.cli.options import get_settings, global_options

if TYPE_CHECKING:
    from llm_mux.cli.options import Settings
    from llm_mux.workflow.api import Prepared
    from llm_mux.workflow.results import RunResult
    from llm_mux.workflow.run_ids import RunIdentity


@click.command("run")
@click.argument("workflow", shell_complete=complete_workflow)
@click.argument("args", nargs=-1, metavar="[NAME=value]...")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Most steps running at once (default: twice the CPU count).",
)
@click.option(
    "--run-id",
    metavar="ID",
    envvar="LLM_MUX_RUN_ID",
    help="Record the run under ID (env LLM_MUX_RUN_ID; default: a new id).",
)
@click.option(
    "--resume",
    metavar="ID|last",
    help="Run a recorded run again, reusing the steps it finished (last: the latest run).",
)
@global_options
def run_command(
    workflow: str,
    args: tuple[str, ...],
    jobs: int | None,
    run_id: str | None,
    resume: str | None,
) -> None:
    """Run WORKFLOW: a name in .llm-mux/workflows/ (or the user's workflows) or a .toml path.

    Arguments are NAME=value words after the workflow name.

    \b
    Examples:
      llm-mux run review                         .llm-mux/workflows/review.toml
      llm-mux run fix file=src/lib.rs            with an argument
      llm-mux run ./ci/triage.toml --output json one JSON document on stdout
      llm-mux run review -q | less               only the final output
      llm-mux run review --resume last           rerun what failed, reuse the rest
    """
    from llm_mux import runtime
    from llm_mux.errors import StepError
    from llm_mux.workflow.api import prepare
    from llm_mux.workflow.context import parse_arg_words

    settings = get_settings()
    words = parse_arg_words(args)
    identity = _identity(run_id, resume, words)
    prepared = prepare(
        workflow, config_file=settings.config, team=settings.team, ecosystem=settings.ecosystem
    )
    if settings.output != "quiet":
        print_warnings(prepared)
    if identity.resume is None:
        prepared.runnable(words)
    result = runtime.run(lambda: _main(prepared, words, settings, jobs, identity))
    if not result.success:
        raise StepError(result.error or "the workflow failed")


def _identity(run_id: str | None, resume: str | None, words: dict[str, str]) -> RunIdentity:
    """``--run-id`` and ``--resume`` checked (exit 2 on a bad id or args with --resume)."""
    from llm_mux.errors import UsageError
    from llm_mux.workflow.run_ids import RunIdentity, check_run_id

    if resume is not None:
        if words:
            raise UsageError("--resume runs again with the recorded arguments; give no NAME=value")
        return RunIdentity(resume=check_run_id(resume, "--resume"))
    return RunIdentity(run_id=check_run_id(run_id, "--run-id") if run_id is not None else None)


async def _main(
    prepared: Prepared,
    words: dict[str, str],
    settings: Settings,
    jobs: int | None,
    identity: RunIdentity,
) -> RunResult:
    from llm_mux.render import make_view
    from llm_mux.render.ask import TerminalAsk, interactive
    from llm_mux.workflow.api import run_prepared
    from llm_mux.workflow.runner import RunOptions

    workflow = prepared.workflow
    view = make_view(settings.output, workflow.step_names(), f"workflow {workflow.name}")
    ask = TerminalAsk(view) if interactive(settings.output) else None
    options = RunOptions(
        concurrency=jobs,
        listener=view,
        ask=ask,
        run_id=identity.run_id,
        resume=identity.resume,
    )
    ticker = asyncio.ensure_future(view.ticker())
    view.start()
    try:
        result = await run_prepared(prepared, words, options)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        view.stop()
    report(result, settings)
    return result


def report(result: RunResult, settings: Settings) -> None:
    """Print the final output (or the JSON document) and save the output to a file."""
    from llm_mux.cli.common import emit_json, emit_text
    from llm_mux.workflow.api import save_output

    saved = _save(save_output, result)
    if settings.json:
        emit_json(result.document())
        return
    if result.output.strip():
        emit_text(result.output)
    if settings.output == "console" and saved is not None:
        _stderr(f"output saved to {saved}")


def _save(save: Any, result: RunResult) -> Any:
    try:
        result.saved_to = save(result.output, result.workflow)
    except OSError as exc:
        _stderr(f"warning: could not save the output: {exc}")
        return None
    return result.saved_to


def print_warnings(prepared: Prepared) -> None:
    for issue in prepared.warnings:
        _stderr(f"warning: {issue.format()}")


def _stderr(text: str) -> None:
    from llm_mux.secrets import redact

    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(redact(text) + "\n")
        sys.stderr.flush()
