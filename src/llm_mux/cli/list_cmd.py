"""``llm-mux backends | roles | teams | ecosystems``: show the merged configuration.

Console output is a readable table; ``--output json`` prints the same data as one JSON
document. Secrets are never shown: ``api_key`` appears as its unexpanded ``${VAR}`` form.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from llm_mux.cli.options import get_settings, global_options
from llm_mux.render import is_terminal
from llm_mux.schema import dump

if TYPE_CHECKING:
    from llm_mux.config import Backend, Config, Ecosystem, Role, Team

Row = list[str]


def backend_data(backend: Backend) -> dict[str, Any]:
    """A backend as shown to users: the keys that were set, with ``type`` resolved."""
    data = dump(backend, exclude={"name"}, exclude_unset=True)
    data["type"] = backend.kind
    data["enabled"] = backend.enabled
    return data


def role_data(role: Role) -> dict[str, Any]:
    return dump(role, exclude={"name"})


def team_data(team: Team) -> dict[str, Any]:
    return dump(team, exclude={"name"}, exclude_none=True)


def ecosystem_data(ecosystem: Ecosystem) -> dict[str, Any]:
    data = dump(ecosystem, exclude={"name", "projects"})
    data["projects"] = {
        name: dump(project, exclude={"name"}) for name, project in ecosystem.projects.items()
    }
    return data


def _backend_row(name: str, backend: Backend) -> Row:
    target = backend.command or backend.model or ""
    if backend.kind == "cli":
        target = " ".join([backend.command or "", *backend.args])
    elif backend.is_http:
        target = f"{backend.command} ({backend.model})"
    state = "yes" if backend.enabled else "no"
    return [name, backend.kind, target, state]


def _role_row(name: str, role: Role) -> Row:
    mode: str = role.execution
    if role.execution == "parallel" and role.min_success > 1:
        mode += f" (min {role.min_success})"
    return [name, mode, ", ".join(role.backends), role.description]


def _team_row(name: str, team: Team) -> Row:
    overrides = ", ".join(f"{role} → {'/'.join(o.backends)}" for role, o in team.roles.items())
    return [name, ", ".join(team.detect), team.verify or "", overrides]


def _ecosystem_row(name: str, ecosystem: Ecosystem) -> Row:
    projects = ", ".join(ecosystem.projects)
    return [name, ecosystem.description, projects, str(len(ecosystem.knowledge))]


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """A titled table on stdout, secrets masked (a doctor detail may quote a server's answer):
    drawn by rich on a terminal; plain aligned columns otherwise, whole and cheap to parse."""
    from llm_mux.secrets import redact

    if not rows:
        click.echo(f"No {title.lower()} configured.")
        return
    if not is_terminal(sys.stdout):
        cells = [[redact(" ".join(str(cell).split())) for cell in row] for row in rows]
        click.echo(f"{title}\n{plain_columns([columns, *cells])}")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(redact(cell)) if isinstance(cell, str) else cell for cell in row))
    Console(soft_wrap=False).print(table)


def plain_columns(rows: list[list[str]]) -> str:
    """Rows as lines of left-aligned columns two spaces apart (the last one unpadded)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = (
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def _listing(
    title: str,
    columns: list[str],
    entries: Callable[[Config], dict[str, Any]],
    to_row: Callable[[str, Any], Row],
    to_data: Callable[[Any], dict[str, Any]],
) -> None:
    from llm_mux.cli.common import emit_json, load

    settings = get_settings()
    config = load(settings)
    items = entries(config)
    if settings.json:
        emit_json({title.lower(): {name: to_data(item) for name, item in items.items()}})
    elif settings.quiet:
        for name in items:
            click.echo(name)
    else:
        print_table(title, columns, [to_row(name, item) for name, item in items.items()])


@click.command("backends")
@global_options
def backends_command() -> None:
    """List configured backends.

    \b
    Examples:
      llm-mux backends
      llm-mux backends --output json
    """
    _listing(
        "Backends",
        ["name", "type", "command", "enabled"],
        lambda c: c.backends,
        _backend_row,
        backend_data,
    )


@click.command("roles")
@global_options
def roles_command() -> None:
    """List configured roles (with the active team's overrides use `ask`/`run`).

    \b
    Examples:
      llm-mux roles
      llm-mux roles --output json
    """
    _listing(
        "Roles",
        ["name", "execution", "backends", "description"],
        lambda c: c.roles,
        _role_row,
        role_data,
    )


@click.command("teams")
@global_options
def teams_command() -> None:
    """List configured teams, their detection patterns and overrides.

    \b
    Examples:
      llm-mux teams
      llm-mux teams --output json
    """
    _listing(
        "Teams",
        ["name", "detect", "verify", "role overrides"],
        lambda c: c.teams,
        _team_row,
        team_data,
    )


@click.command("ecosystems")
@global_options
def ecosystems_command() -> None:
    """List configured ecosystems and their projects.

    \b
    Examples:
      llm-mux ecosystems
      llm-mux ecosystems --output json
    """
    _listing(
        "Ecosystems",
        ["name", "description", "projects", "facts"],
        lambda c: c.ecosystems,
        _ecosystem_row,
        ecosystem_data,
    )
