"""The ``llm-mux`` click group; subcommands are imported only when invoked."""

from __future__ import annotations

import importlib
from typing import Any

import click

from llm_mux._version import __version__
from llm_mux.cli.options import global_options

# name -> (module, attribute, one-line help shown without importing the module)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("llm_mux.cli.run_cmd", "run_command", "Run a workflow."),
    "validate": ("llm_mux.cli.validate_cmd", "validate_command", "Check a workflow statically."),
    "ask": ("llm_mux.cli.ask_cmd", "ask_command", "Send one prompt to a role or backend."),
    "doctor": ("llm_mux.cli.doctor_cmd", "doctor_command", "Check every backend."),
    "backends": ("llm_mux.cli.list_cmd", "backends_command", "List configured backends."),
    "roles": ("llm_mux.cli.list_cmd", "roles_command", "List configured roles."),
    "teams": ("llm_mux.cli.list_cmd", "teams_command", "List configured teams."),
    "ecosystems": ("llm_mux.cli.list_cmd", "ecosystems_command", "List configured ecosystems."),
    "memory": ("llm_mux.cli.memory_cmd", "memory_command", "Read the knowledge base."),
    "serve": (
        "llm_mux.cli.serve_cmd",
        "serve_command",
        "Serve roles over the OpenAI/Anthropic APIs.",
    ),
    "init": ("llm_mux.cli.init_cmd", "init_command", "Detect backends and write a config."),
    "completion": (
        "llm_mux.cli.completion",
        "completion_command",
        "Print a shell completion script.",
    ),
}

EPILOG = """\b
Examples:
  llm-mux init                      write a starter config from what this machine has
  llm-mux doctor                    check that every backend answers
  llm-mux ask quick "Explain CRDTs in one line"
  llm-mux run review --output json  run .llm-mux/workflows/review.toml
  llm-mux validate fix              check a workflow without running it
"""


class LazyGroup(click.Group):
    """A group whose subcommands load on first use, keeping ``--help`` fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in self.list_commands(ctx):
            from llm_mux.errors import did_you_mean

            hint = did_you_mean(name, self.list_commands(ctx))
            raise click.UsageError(f"no such command '{name}'{hint}", ctx)
        return super().resolve_command(ctx, args)


@click.group(
    cls=LazyGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(
    __version__, "--version", "-V", prog_name="llm-mux", message="%(prog)s %(version)s"
)
@global_options
def cli(**_: Any) -> None:
    """A multiplexer for LLMs: route prompts to CLI and HTTP backends, run them in
    parallel or as fallbacks, and orchestrate multi-step workflows."""
