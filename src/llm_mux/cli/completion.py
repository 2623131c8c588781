"""Shell completion: workflow names for ``run``/``validate``, roles and backends for ``ask``.

Completion runs on every key press, so these read only what they need and never fail: a
broken config simply completes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem


def _config_file(ctx: click.Context) -> tuple[Path, ...]:
    from llm_mux.cli.options import get_settings

    return get_settings(ctx).config


def complete_workflow(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    try:
        from llm_mux.workflow.discover import available

        names = sorted(available(Path.cwd()))
    except Exception:
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


def complete_target(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    try:
        from llm_mux.config import load_config

        config = load_config(_config_file(ctx))
    except Exception:
        return []
    roles = [CompletionItem(name, help="role") for name in config.roles]
    backends = [CompletionItem(name, help="backend") for name in config.backends]
    return [item for item in roles + backends if item.value.startswith(incomplete)]


SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    """Print the completion script for SHELL (commands, workflows, roles, backends).

    \b
    Examples:
      eval "$(llm-mux completion bash)"        # in ~/.bashrc
      eval "$(llm-mux completion zsh)"         # in ~/.zshrc
      llm-mux completion fish > ~/.config/fish/completions/llm-mux.fish
    """
    from click.shell_completion import get_completion_class

    from llm_mux.cli.app import cli

    completion_class = get_completion_class(shell)
    if completion_class is None:  # pragma: no cover - the Choice above prevents it
        raise click.UsageError(f"unsupported shell {shell}")
    script = completion_class(cli, {}, "llm-mux", "_LLM_MUX_COMPLETE").source()
    click.echo(script)
