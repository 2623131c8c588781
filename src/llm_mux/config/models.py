"""Pydantic models of the config file (SPEC §1).

Every table forbids unknown keys, so a typo is an error with a did-you-mean rather than a
silently ignored setting. Values holding ``${VAR}`` stay unexpanded here: expansion happens
when a backend is used (see :mod:`llm_mux.config.expand`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BackendType = Literal["cli", "openai", "ollama", "anthropic", "mock", "local"]
Execution = Literal["first", "parallel", "fallback"]
MockFailure = Literal["rate_limit", "timeout", "auth", "server_error", "crash", "malformed_json"]

REDIS_URL_ENV = "LLM_MUX_REDIS_URL"  # wins over [shared] redis_url, and alone enables it
MIN_LEASE_MS = 300.0  # a shorter lease could expire between two renewals on a busy machine

HTTP_TYPES = frozenset({"openai", "ollama", "anthropic"})

# Keys that only mean something for some backend types. Elsewhere they are ignored with a
# warning naming them (the seed's own "Backend Options" block gives a CLI `model` and
# `api_key`), never silently: `validate`, `doctor` and `--debug` say so.
_TYPE_ONLY_KEYS: dict[str, frozenset[str]] = {
    "args": frozenset({"cli"}),
    "env": frozenset({"cli"}),
    "prompt_via": frozenset({"cli"}),
    "stdin_fallback": frozenset({"cli"}),
    "api_key": HTTP_TYPES,
    "model": HTTP_TYPES | {"local"},
    "params": HTTP_TYPES,
    "stream": frozenset({"openai", "ollama", "anthropic"}),
    "api_version": frozenset({"anthropic"}),
    "max_tokens": HTTP_TYPES | {"local"},
    "temperature": HTTP_TYPES | {"local"},
    "system": HTTP_TYPES | {"local"},
    "context": frozenset({"local"}),
    "parallel": frozenset({"local"}),
    "threads": frozenset({"local"}),
    "response": frozenset({"mock"}),
    "responses": frozenset({"mock"}),
    "echo": frozenset({"mock"}),
    "delay": frozenset({"mock"}),
    "fail": frozenset({"mock"}),
    "fail_times": frozenset({"mock"}),
    "retry_after": frozenset({"mock"}),
    "size": frozenset({"mock"}),
}


class _Strict(BaseModel):
    # defer_build: a model's validator is built on its first use, so a command pays only
    # for the tables and step kinds its files hold
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Defaults(_Strict):
    """``[defaults]``: run-wide settings."""

    timeout: int = Field(300, gt=0)
    max_concurrent: int | None = Field(None, gt=0)
    command_wrapper: str | None = None
    max_output_mb: int = Field(64, gt=0)
    memory_url: str | None = None


class Backend(_Strict):
    """``[backends.NAME]``: one LLM reachable as a command, an HTTP API, a mock or a local model."""

    name: str = ""
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    model: str | None = None
    api_key: str | None = None
    type: BackendType | None = None
    enabled: bool = True
    timeout: int | None = Field(None, gt=0)
    max_retries: int = Field(3, ge=0)
    retry_delay: int = Field(1000, ge=0)
    retry_rate_limit: bool = True
    retry_timeout: bool = False
    env: dict[str, str] = Field(default_factory=dict)
    max_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, ge=0)
    system: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    prompt_via: Literal["arg", "stdin"] = "arg"
    stdin_fallback: bool = True
    max_concurrent: int | None = Field(None, gt=0)
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    burst: int | None = Field(None, ge=1)
    rate_group: str | None = Field(None, min_length=1)
    stream: bool = False
    api_version: str | None = None
    # local (llama.cpp in-process)
    context: int | None = Field(None, gt=0)
    parallel: int | None = Field(None, gt=0)
    threads: int | None = Field(None, gt=0)
    # mock (scripted answers for trying workflows offline)
    response: str | None = None
    responses: list[str] | None = None
    echo: bool = False
    delay: int | None = Field(None, ge=0)
    fail: MockFailure | None = None
    fail_times: int | None = Field(None, ge=0)
    retry_after: float | None = Field(None, ge=0)
    size: int | None = Field(None, ge=0)

    @property
    def kind(self) -> str:
        """The backend type: explicit ``type``, else ``openai`` for a URL, else ``cli``."""
        if self.type is not None:
            return self.type
        if self.command and self.command.startswith(("http://", "https://")):
            return "openai"
        return "cli"

    @property
    def is_http(self) -> bool:
        return self.kind in HTTP_TYPES

    def ignored_keys(self) -> list[str]:
        """Warnings for keys that were set but mean nothing for this backend's type."""
        kind, found = self.kind, []
        for key in sorted(self.model_fields_set):
            allowed = _TYPE_ONLY_KEYS.get(key)
            if allowed is not None and kind not in allowed:
                kinds = ", ".join(sorted(allowed))
                found.append(
                    f"backend '{self.name}': key '{key}' applies only to backends of type "
                    f"{kinds}, not '{kind}'; it is ignored"
                )
        return found

    @model_validator(mode="after")
    def _check_kind_keys(self) -> Backend:
        kind = self.kind
        if (kind == "cli" or kind in HTTP_TYPES) and not self.command:
            raise ValueError(f"'command' is required for a backend of type '{kind}'")
        if kind in HTTP_TYPES and not self.model:
            raise ValueError(f"'model' is required for an HTTP backend (type '{kind}')")
        return self


class Shared(_Strict):
    """``[shared]``: rate and concurrency limits shared through Redis (SPEC §8)."""

    redis_url: str | None = None
    namespace: str = Field("llm-mux", min_length=1)
    lease: float = 30_000.0  # ms; written as "30s" (a plain number is seconds)
    timeout_ms: int = Field(250, gt=0)
    on_error: Literal["local", "fail"] = "local"

    @field_validator("lease", mode="before")
    @classmethod
    def _lease_ms(cls, value: Any) -> float:
        from llm_mux.workflow.durations import parse_duration

        if isinstance(value, int | float) and not isinstance(value, bool):
            value = f"{value}s"
        ms = parse_duration(value)
        if ms < MIN_LEASE_MS:
            raise ValueError(f"lease must be at least {MIN_LEASE_MS:g} ms")
        return ms

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://", "${")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        if value and "${" not in value:
            from urllib.parse import urlsplit

            try:
                urlsplit(value).port  # noqa: B018 - parsing it is the check
            except ValueError as exc:
                raise ValueError(f"invalid redis_url: {exc}") from None
        return value

    @field_validator("namespace")
    @classmethod
    def _no_braces(cls, value: str) -> str:
        if "{" in value or "}" in value:
            raise ValueError("namespace may not contain '{' or '}' (they mark Redis hash tags)")
        return value


class Role(_Strict):
    """``[roles.NAME]``: a task type mapped to backends and an execution mode."""

    name: str = ""
    description: str = ""
    backends: list[str] = Field(min_length=1)
    execution: Execution = "first"
    min_success: int = Field(1, ge=1)


class RoleOverride(_Strict):
    """``[teams.X.roles.Y]``: replaces a role's backends (and optionally mode) for a team."""

    backends: list[str] = Field(min_length=1)
    execution: Execution | None = None
    min_success: int | None = Field(None, ge=1)


class Team(_Strict):
    """``[teams.NAME]``: detected from marker files; overrides roles, names a verify command."""

    name: str = ""
    description: str = ""
    detect: list[str] = Field(default_factory=list)
    verify: str | None = None
    roles: dict[str, RoleOverride] = Field(default_factory=dict)

    @field_validator("roles", mode="before")
    @classmethod
    def _list_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"backends": v} if isinstance(v, list) else v for k, v in value.items()}
        return value


class Project(_Strict):
    """``[ecosystems.E.projects.P]``: one project of an ecosystem."""

    name: str = ""
    description: str = ""
    path: str = ""
    type: str = ""
    depends_on: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class Ecosystem(_Strict):
    """``[ecosystems.NAME]``: related projects and the knowledge they share."""

    name: str = ""
    description: str = ""
    knowledge: list[str] = Field(default_factory=list)
    projects: dict[str, Project] = Field(default_factory=dict)


class Serve(_Strict):
    """``[serve]``: where ``llm-mux serve`` listens and who may call it (SPEC §9)."""

    host: str = "127.0.0.1"
    port: int = Field(4141, ge=0, le=65535)
    api_keys: list[str] = Field(default_factory=list)
    models: list[str] | None = None
    max_body_mb: float = Field(16, gt=0)
    grace: str | float = "30s"
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("grace")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        _seconds(value)
        return value

    @property
    def grace_seconds(self) -> float:
        """``grace`` in seconds: a plain number is seconds, a string gives its unit."""
        return _seconds(self.grace)


def _seconds(value: str | float) -> float:
    if isinstance(value, str):
        from llm_mux.workflow.durations import parse_duration

        return parse_duration(value) / 1000
    if value < 0:
        raise ValueError("grace must not be negative")
    return float(value)


class ConfigFile(_Strict):
    """One config file as written; files are merged entry by entry into :class:`Config`."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    serve: dict[str, Any] = Field(default_factory=dict)
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = Field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = Field(default_factory=dict)
    ecosystems: dict[str, dict[str, Any]] = Field(default_factory=dict)
    shared: dict[str, Any] = Field(default_factory=dict)
