"""Global options, accepted before or after the subcommand.

Each option is declared on the group and on every command; whichever is given last on the
command line wins, and all land in one :class:`Settings` object on the root context.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from llm_mux.values import Value

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_MODES = ("console", "json", "quiet")


class Settings(Value, frozen=False):
    """What the global options asked for."""

    output: str = "console"
    debug: bool = False
    team: str | None = None
    config: tuple[Path, ...] = ()  # every --config, in command-line order
    ecosystem: str | None = None
    emitted: bool = False  # a JSON document is on stdout already

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def quiet(self) -> bool:
        return self.output == "quiet"


_current: list[Settings] = []


def get_settings(ctx: click.Context | None = None) -> Settings:
    """The run's settings, stored on the root context."""
    root = (ctx or click.get_current_context()).find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
        _current[:] = [root.obj]
    return root.obj


def current_settings() -> Settings | None:
    """The settings of the invocation in progress, even after its click context has closed.

    The error boundary needs them to answer in the output format that was asked for.
    """
    return _current[0] if _current else None


def forget_settings() -> None:
    """Start a new invocation (several may run in one process, e.g. in tests)."""
    _current.clear()


def _setter(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False or value == ():
            return
        settings = get_settings(ctx)
        if attribute == "quiet":
            settings.output = "quiet"
        elif attribute == "config":
            settings.config = (*settings.config, *value)
        elif attribute == "debug":
            settings.debug = True
            from llm_mux.logs import enable_debug

            enable_debug()
        else:
            setattr(settings, attribute, value)

    return store


def _global(*decls: str, attribute: str, **attrs: Any) -> Callable[[F], F]:
    """An option that only records its value in :class:`Settings`, before any other."""
    return click.option(
        *decls, callback=_setter(attribute), expose_value=False, is_eager=True, **attrs
    )


def global_options(func: F) -> F:
    """Attach the global options to a group or command."""
    options = [
        _global(
            "--output",
            "-o",
            attribute="output",
            type=click.Choice(OUTPUT_MODES),
            help="Output format: console (live view), json (one document), quiet.",
        ),
        _global(
            "--quiet",
            "-q",
            attribute="quiet",
            is_flag=True,
            default=None,
            help="Only the final output (same as --output quiet).",
        ),
        _global(
            "--debug",
            attribute="debug",
            is_flag=True,
            default=None,
            help="Log backend commands, timings and retries on stderr (secrets masked).",
        ),
        _global(
            "--team",
            attribute="team",
            metavar="NAME|none",
            help="Force a team, or 'none' to disable team detection.",
        ),
        _global(
            "--ecosystem",
            attribute="ecosystem",
            metavar="NAME",
            help="Force the ecosystem instead of detecting it from the directory.",
        ),
        _global(
            "--config",
            "-c",
            attribute="config",
            type=click.Path(path_type=Path, dir_okay=False),
            multiple=True,
            help="An extra config file, applied after the user and project files; "
            "repeat it to merge several, later ones winning.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
