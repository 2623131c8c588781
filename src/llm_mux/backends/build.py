"""The backend registry: type name → the module that builds it (imported on first use).

Adding a backend type is one module with a class satisfying
:class:`~llm_mux.backends.base.Backend` and one line in ``_FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Callable

from llm_mux.backends.base import Backend
from llm_mux.backends.http import HttpClientHolder
from llm_mux.config import Backend as BackendConfig
from llm_mux.config import Config, Defaults
from llm_mux.config.expand import missing_variables
from llm_mux.errors import BackendError

Factory = Callable[[str, BackendConfig, Defaults, HttpClientHolder], Backend]


def _cli(name: str, cfg: BackendConfig, defaults: Defaults, _: HttpClientHolder) -> Backend:
    from llm_mux.backends.cli import CliBackend

    return CliBackend(name, cfg, defaults)


def _openai(name: str, cfg: BackendConfig, defaults: Defaults, client: HttpClientHolder) -> Backend:
    from llm_mux.backends.openai import OpenAIBackend

    return OpenAIBackend(name, cfg, defaults, client=client)


def _ollama(name: str, cfg: BackendConfig, defaults: Defaults, client: HttpClientHolder) -> Backend:
    from llm_mux.backends.ollama import OllamaBackend

    return OllamaBackend(name, cfg, defaults, client=client)


def _anthropic(
    name: str, cfg: BackendConfig, defaults: Defaults, client: HttpClientHolder
) -> Backend:
    from llm_mux.backends.anthropic import AnthropicBackend

    return AnthropicBackend(name, cfg, defaults, client=client)


def _mock(name: str, cfg: BackendConfig, defaults: Defaults, _: HttpClientHolder) -> Backend:
    from llm_mux.backends.mock import MockBackend

    return MockBackend(name, cfg, defaults)


def _local(name: str, cfg: BackendConfig, defaults: Defaults, _: HttpClientHolder) -> Backend:
    from llm_mux.backends.local import LocalBackend

    backend: Backend = LocalBackend(name, cfg, defaults)
    return backend


_FACTORIES: dict[str, Factory] = {
    "cli": _cli,
    "openai": _openai,
    "ollama": _ollama,
    "anthropic": _anthropic,
    "mock": _mock,
    "local": _local,
}


def build_backend(name: str, config: Config, *, client: HttpClientHolder) -> Backend:
    """The backend called ``name`` (ConfigError with did-you-mean for an unknown name)."""
    cfg = config.backend(name)
    return _FACTORIES[cfg.kind](name, cfg, config.defaults, client)


def unavailable_reason(name: str, cfg: BackendConfig, defaults: Defaults) -> str | None:
    """Why a backend cannot be used right now without trying it, or None when it can.

    Cheap and offline: a disabled flag, a CLI command not on PATH, an HTTP backend whose
    ``${VAR}`` is missing. Used by ``first`` roles to pick the first usable backend.
    """
    if not cfg.enabled:
        return "disabled (enabled = false)"
    values = [cfg.command or "", cfg.api_key or "", *cfg.args, *cfg.env.values()]
    for value in values:
        missing = missing_variables(value)
        if missing:
            return f"environment variable '{missing[0]}' is not set"
    if cfg.kind == "cli":
        from llm_mux.backends.cli import resolve_command

        try:
            resolve_command(cfg, defaults, name)
        except BackendError as exc:
            return exc.detail
    return None
