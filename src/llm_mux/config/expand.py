"""Lazy ``${VAR}`` expansion.

Values are expanded when a backend is used, not when the config loads, so an unused backend
whose variable is missing never blocks a run. Values taken from the environment for
sensitive fields are registered as secrets, so they are masked everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from llm_mux import secrets
from llm_mux.errors import ConfigError

_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def references(value: str) -> list[str]:
    """The variable names a value refers to, in order."""
    return [m.group(1) for m in _PATTERN.finditer(value) if m.group(1)]


def expand(
    value: str,
    *,
    owner: str,
    field: str,
    secret: bool = False,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Expand ``${VAR}`` (and ``$$`` → ``$``) in ``value``.

    A missing variable is a :class:`ConfigError` naming the variable, the field and its
    owner (e.g. ``backend 'openai'``). With ``secret=True`` each substituted value is
    registered for redaction.
    """
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in env:
            raise ConfigError(
                f"environment variable '{name}' is not set (used in {field} of {owner})",
                hint=f"export {name}=… or change {field} of {owner}",
            )
        found = env[name]
        if secret:
            secrets.register(found)
        return found

    return _PATTERN.sub(substitute, value)


def missing_variables(value: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Variables referenced by ``value`` that the environment lacks (for ``doctor``)."""
    env = os.environ if environ is None else environ
    return [name for name in references(value) if name not in env]
