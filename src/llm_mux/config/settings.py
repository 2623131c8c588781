"""The merged, validated configuration a run works with."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from llm_mux.config.models import Backend, Defaults, Ecosystem, Role, Serve, Team


@dataclass(frozen=True)
class Config:
    """User, project and ``--config`` files merged entry by entry (SPEC §1)."""

    defaults: Defaults = field(default_factory=Defaults)
    backends: dict[str, Backend] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    ecosystems: dict[str, Ecosystem] = field(default_factory=dict)
    serve: Serve = field(default_factory=Serve)
    sources: tuple[Path, ...] = ()
    project_root: Path | None = None

    def with_roles(self, roles: dict[str, Role]) -> Config:
        """A copy where ``roles`` (e.g. a workflow's own ``[roles]``) replace same-named ones."""
        return replace(self, roles={**self.roles, **roles})

    def backend(self, name: str) -> Backend:
        """The backend called ``name``; a :class:`ConfigError` with did-you-mean otherwise."""
        from llm_mux.errors import ConfigError, did_you_mean

        try:
            return self.backends[name]
        except KeyError:
            hint = did_you_mean(name, self.backends)
            raise ConfigError(f"unknown backend '{name}'{hint}") from None
