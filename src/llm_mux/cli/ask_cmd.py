"""``llm-mux ask ROLE_OR_BACKEND [PROMPT]``: one prompt to a role or a backend."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from llm_mux.cli.completion import complete_target
from llm_mux.cli.options import get_settings, global_options

if TYPE_CHECKING:
    from llm_mux.config import Config, Team
    from llm_mux.events import BackendEvent
    from llm_mux.roles import RoleResult


@click.command("ask")
@click.argument("target", metavar="ROLE_OR_BACKEND", shell_complete=complete_target)
@click.argument("prompt", required=False)
@global_options
def ask_command(target: str, prompt: str | None) -> None:
    """Send PROMPT to a role (or a single backend) and print the answer.

    The prompt is read from stdin when PROMPT is absent or '-'. A name that is both a role
    and a backend means the role. Exit 1 when the role fails, naming each backend's failure.

    \b
    Examples:
      llm-mux ask quick "Explain CRDTs in one sentence"
      git diff | llm-mux ask analyzer              prompt from stdin
      llm-mux ask analyzer "Review: $(cat x.py)" --output json
    """
    from llm_mux import runtime
    from llm_mux.cli.common import emit_json, emit_text, load
    from llm_mux.roles import RoleFailed
    from llm_mux.teams import detect_team, project_root

    settings = get_settings()
    config = load(settings)
    _check_target(config, target)
    text = _read_prompt(prompt)
    root = project_root(Path.cwd())
    team = detect_team(config, root, settings.team)
    console = settings.output == "console"
    listener = _print_progress if console else None
    try:
        result = runtime.run(lambda: _ask(config, team, root, target, text, listener))
    except RoleFailed as exc:
        if settings.json:
            emit_json(document(exc.result, team))
        raise
    if console:
        _print_skipped(result)
    if settings.json:
        emit_json(document(result, team))
    else:
        emit_text(result.output)


async def _ask(
    config: Config,
    team: Team | None,
    root: Path,
    target: str,
    prompt: str,
    listener: Any,
) -> RoleResult:
    from llm_mux.roles import Multiplexer

    async with Multiplexer(config, team=team, cwd=root, listener=listener) as mux:
        if target in config.roles:
            return await mux.call_role(target, prompt)
        return await mux.call_backend(target, prompt)


def _check_target(config: Config, target: str) -> None:
    from llm_mux.errors import ConfigError, did_you_mean

    if target in config.roles or target in config.backends:
        return
    names = [*config.roles, *config.backends]
    roles = ", ".join(config.roles) or "none"
    backends = ", ".join(config.backends) or "none"
    raise ConfigError(
        f"unknown role or backend '{target}'{did_you_mean(target, names)}; "
        f"roles: {roles}; backends: {backends}"
    )


def _read_prompt(argument: str | None) -> str:
    from llm_mux.errors import UsageError

    if argument is not None and argument != "-":
        text = argument
    elif sys.stdin is None or sys.stdin.closed:
        text = ""
    else:
        if sys.stdin.isatty():
            click.echo("reading the prompt from stdin (end it with Ctrl-D)", err=True)
        text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    if not text.strip():
        raise UsageError("no prompt: give PROMPT or pipe it on stdin")
    return text


_MARKS = {"done": "done", "failed": "FAILED", "retrying": "retry"}


def _print_progress(event: BackendEvent) -> None:
    """Each backend on stderr as it finishes (or waits to retry)."""
    from llm_mux.secrets import redact

    mark = _MARKS.get(event.state)
    if mark is None:
        return
    line = f"[{mark}] {event.backend} ({event.elapsed_ms / 1000:.1f}s)"
    if event.detail:
        line += f": {event.detail}"
    click.echo(redact(line), err=True)


def _print_skipped(result: RoleResult) -> None:
    for name, reason in result.skipped.items():
        from llm_mux.secrets import redact

        click.echo(redact(f"[skipped] {name}: {reason}"), err=True)


def document(result: RoleResult, team: Team | None) -> dict[str, Any]:
    """The ``--output json`` document of one ask."""
    backends: dict[str, Any] = {
        o.backend: {
            "ok": o.ok,
            "output": o.output,
            "error": o.error_text,
            "duration_ms": o.duration_ms,
            "attempts": o.attempts,
            "usage": o.usage,
        }
        for o in result.outcomes
    }
    for name, reason in result.skipped.items():
        backends[name] = {
            "ok": False,
            "output": None,
            "error": f"skipped: {reason}",
            "skipped": True,
            "duration_ms": 0,
            "attempts": 0,
            "usage": None,
        }
    return {
        "role": result.name,
        "execution": result.execution,
        "success": result.ok,
        "output": result.output,
        "outputs": result.outputs,
        "team": team.name if team is not None else None,
        "duration_ms": result.duration_ms,
        "usage": result.usage,
        "backends": backends,
    }
