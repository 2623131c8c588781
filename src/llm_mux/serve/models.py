"""Which names the server answers to: roles first, then enabled backends (or ``[serve] models``)."""

from __future__ import annotations

from llm_mux.config import Config
from llm_mux.errors import ConfigError, did_you_mean


def exposed_models(config: Config) -> list[str]:
    """The model names, in the order ``/v1/models`` lists them; ConfigError for a bad name."""
    known = [*config.roles, *(n for n in config.backends if n not in config.roles)]
    chosen = config.serve.models
    if chosen is None:
        enabled = [n for n, b in config.backends.items() if b.enabled and n not in config.roles]
        return [*config.roles, *enabled]
    for name in chosen:
        if name not in known:
            hint = did_you_mean(name, known)
            listed = ", ".join(known) or "none"
            raise ConfigError(
                f"[serve] models names unknown role or backend '{name}'{hint}; known: {listed}"
            )
    roles = [n for n in config.roles if n in chosen]
    return [*roles, *(n for n in config.backends if n in chosen and n not in config.roles)]
