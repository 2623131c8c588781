"""The merged, validated configuration a run works with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from llm_mux.config.models import (
    REDIS_URL_ENV,
    Backend,
    Defaults,
    Ecosystem,
    Role,
    Serve,
    Shared,
    Team,
)
from llm_mux.schema import updated
from llm_mux.values import Value, field, replace


class Config(Value):
    """User, project and ``--config`` files merged entry by entry (SPEC §1)."""

    defaults: Defaults = field(factory=Defaults)
    backends: dict[str, Backend] = field(factory=dict)
    roles: dict[str, Role] = field(factory=dict)
    teams: dict[str, Team] = field(factory=dict)
    ecosystems: dict[str, Ecosystem] = field(factory=dict)
    serve: Serve = field(factory=Serve)
    shared: Shared | None = None  # the [shared] table as written; see backends.shared_config
    sources: tuple[Path, ...] = ()
    project_root: Path | None = None

    def warnings(self) -> list[str]:
        """Problems that do not stop a run: keys ignored for their backend's type."""
        return [w for backend in self.backends.values() for w in backend.ignored_keys()]

    def shared_settings(self, environ: Mapping[str, str] | None = None) -> Shared | None:
        """``[shared]`` with ``LLM_MUX_REDIS_URL`` applied (the variable alone enables it)."""
        env = os.environ if environ is None else environ
        url = env.get(REDIS_URL_ENV)
        if url:
            return updated(self.shared or Shared(), redis_url=url)
        return self.shared

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
