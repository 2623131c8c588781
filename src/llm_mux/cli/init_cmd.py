"""``llm-mux init``: detect what this machine has and write a starter config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from llm_mux.cli.options import get_settings, global_options
from llm_mux.errors import UsageError


def _target(project: bool) -> Path:
    if project:
        return Path.cwd() / ".llm-mux" / "config.toml"
    from llm_mux.config import user_config_dir

    return user_config_dir() / "config.toml"


def _write_private(path: Path, text: str) -> None:
    """Write atomically; the file may name key variables, so it is private to the user."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    temp.replace(path)


@click.command("init")
@click.option("--project", is_flag=True, help="Write .llm-mux/config.toml in this directory.")
@click.option("--dry-run", is_flag=True, help="Print the config without writing it.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@global_options
def init_command(project: bool, dry_run: bool, force: bool) -> None:
    """Detect agent CLIs, local servers and API keys, and write a starter config.

    Agent CLIs on PATH (claude, codex, gemini, llm, aichat, opencode), model servers on
    loopback (Ollama, LM Studio, llama.cpp, vLLM) and API keys in the environment become
    backends; keys are referred to as ${VAR}, never copied. Roles `analyzer` (parallel),
    `quick` (first) and `fallback` are proposed over what was found.

    \b
    Examples:
      llm-mux init --dry-run        show what would be written
      llm-mux init                  write ~/.config/llm-mux/config.toml
      llm-mux init --project        write .llm-mux/config.toml here
    """
    from llm_mux import machine, runtime
    from llm_mux.init_config import render_config

    target = _target(project)
    if target.exists() and not force and not dry_run:
        raise UsageError(
            f"{target} already exists; nothing was changed",
            hint="use --force to overwrite it, or --dry-run to see the proposal",
        )
    detection = runtime.run(machine.detect)
    text = render_config(detection)
    settings = get_settings()
    if not settings.quiet:
        click.echo(text, nl=False)
    if dry_run:
        return
    _write_private(target, text)
    if not settings.quiet:
        click.echo(f"wrote {target}", err=True)
        click.echo('next: llm-mux doctor, then llm-mux ask quick "hello"', err=True)
    sys.stdout.flush()
