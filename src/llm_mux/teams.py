"""Teams: detected from marker files in the project root, or forced with ``--team``.

Detection is deterministic: the first team in file order with any matching ``detect`` glob
wins. ``{{ team }}`` renders as the team's name (empty when none) and still offers
``.verify`` and friends, through :class:`TeamValue`.
"""

from __future__ import annotations

from pathlib import Path

from llm_mux.config import Config, Team
from llm_mux.errors import ConfigError, did_you_mean

PROJECT_DIR = ".llm-mux"
NO_TEAM = "none"


def project_root(cwd: Path) -> Path:
    """The directory holding the nearest ``.llm-mux/``, else the git top level, else ``cwd``."""
    here = cwd.resolve()
    directories = (here, *here.parents)
    for directory in directories:
        if (directory / PROJECT_DIR).is_dir():
            return directory
    for directory in directories:
        if (directory / ".git").exists():  # a directory, or a file in worktrees
            return directory
    return here


def detect_team(config: Config, root: Path, forced: str | None) -> Team | None:
    """The active team: ``forced`` by name (``"none"`` disables), else the first detected."""
    if forced is not None:
        return _forced(config, forced)
    for team in config.teams.values():
        if any(_matches(root, pattern, team.name) for pattern in team.detect):
            return team
    return None


def _forced(config: Config, name: str) -> Team | None:
    if name.lower() == NO_TEAM:
        return None
    try:
        return config.teams[name]
    except KeyError:
        known = ", ".join(config.teams) or "none configured"
        raise ConfigError(
            f"unknown team '{name}'{did_you_mean(name, config.teams)}; known teams: {known}",
            hint="use --team none to disable team detection",
        ) from None


def _matches(root: Path, pattern: str, team: str) -> bool:
    try:
        return next(iter(root.glob(pattern)), None) is not None
    except (ValueError, NotImplementedError) as exc:
        raise ConfigError(f"invalid detect pattern {pattern!r} in team '{team}': {exc}") from None


class TeamValue(str):
    """The team as a template value: renders and compares as its name ("" when none)."""

    name: str
    verify: str
    description: str
    detect: list[str]

    def __new__(cls, team: Team | None) -> TeamValue:
        value = super().__new__(cls, team.name if team is not None else "")
        value.name = team.name if team is not None else ""
        value.verify = (team.verify or "") if team is not None else ""
        value.description = team.description if team is not None else ""
        value.detect = list(team.detect) if team is not None else []
        return value

    def __repr__(self) -> str:
        return f"TeamValue({str(self)!r})"


def team_value(team: Team | None) -> TeamValue:
    """The ``team`` template value for ``team`` (or for no team)."""
    return TeamValue(team)
