"""The tables of the config file as validated records (SPEC §1).

Every table forbids unknown keys, so a typo is an error with a did-you-mean rather than a
silently ignored setting. Values holding ``${VAR}`` stay unexpanded here: expansion happens
when a backend is used (see :mod:`llm_mux.config.expand`).
"""

from __future__ import annotations

from typing import Any, Literal

from llm_mux.schema import Record, rule

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


class Defaults(Record):
    """``[defaults]``: run-wide settings."""

    timeout: int = rule(default=300, gt=0)
    max_concurrent: int | None = rule(default=None, gt=0)
    command_wrapper: str | None = None
    max_output_mb: int = rule(default=64, gt=0)
    memory_url: str | None = None


class Backend(Record):
    """``[backends.NAME]``: one LLM reachable as a command, an HTTP API, a mock or a local model."""

    name: str = ""
    command: str | None = None
    args: list[str] = rule(factory=list)
    model: str | None = None
    api_key: str | None = None
    type: BackendType | None = None
    enabled: bool = True
    timeout: int | None = rule(default=None, gt=0)
    max_retries: int = rule(default=3, ge=0)
    retry_delay: int = rule(default=1000, ge=0)
    retry_rate_limit: bool = True
    retry_timeout: bool = False
    env: dict[str, str] = rule(factory=dict)
    max_tokens: int | None = rule(default=None, gt=0)
    temperature: float | None = rule(default=None, ge=0)
    system: str | None = None
    params: dict[str, Any] = rule(factory=dict)
    prompt_via: Literal["arg", "stdin"] = "arg"
    stdin_fallback: bool = True
    max_concurrent: int | None = rule(default=None, gt=0)
    rpm: int | None = rule(default=None, gt=0)
    tpm: int | None = rule(default=None, gt=0)
    burst: int | None = rule(default=None, ge=1)
    rate_group: str | None = rule(default=None, min_length=1)
    stream: bool = False
    api_version: str | None = None
    # local (llama.cpp in-process)
    context: int | None = rule(default=None, gt=0)
    parallel: int | None = rule(default=None, gt=0)
    threads: int | None = rule(default=None, gt=0)
    # mock (scripted answers for trying workflows offline)
    response: str | None = None
    responses: list[str] | None = None
    echo: bool = False
    delay: int | None = rule(default=None, ge=0)
    fail: MockFailure | None = None
    fail_times: int | None = rule(default=None, ge=0)
    retry_after: float | None = rule(default=None, ge=0)
    size: int | None = rule(default=None, ge=0)

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
        for key in sorted(self.fields_set):
            allowed = _TYPE_ONLY_KEYS.get(key)
            if allowed is not None and kind not in allowed:
                kinds = ", ".join(sorted(allowed))
                found.append(
                    f"backend '{self.name}': key '{key}' applies only to backends of type "
                    f"{kinds}, not '{kind}'; it is ignored"
                )
        return found

    def check(self) -> None:
        kind = self.kind
        if (kind == "cli" or kind in HTTP_TYPES) and not self.command:
            raise ValueError(f"'command' is required for a backend of type '{kind}'")
        if kind in HTTP_TYPES and not self.model:
            raise ValueError(f"'model' is required for an HTTP backend (type '{kind}')")


def _lease_ms(value: Any) -> float:
    from llm_mux.workflow.durations import parse_duration

    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value}s"
    ms = parse_duration(value)
    if ms < MIN_LEASE_MS:
        raise ValueError(f"lease must be at least {MIN_LEASE_MS:g} ms")
    return ms


def _redis_scheme(value: str | None) -> str | None:
    if value and not value.startswith(("redis://", "rediss://", "unix://", "${")):
        raise ValueError("redis_url must start with redis://, rediss:// or unix://")
    if value and "${" not in value:
        from urllib.parse import urlsplit

        try:
            urlsplit(value).port  # noqa: B018 - parsing it is the check
        except ValueError as exc:
            raise ValueError(f"invalid redis_url: {exc}") from None
    return value


def _no_braces(value: str) -> str:
    if "{" in value or "}" in value:
        raise ValueError("namespace may not contain '{' or '}' (they mark Redis hash tags)")
    return value


class Shared(Record):
    """``[shared]``: rate and concurrency limits shared through Redis (SPEC §8)."""

    redis_url: str | None = rule(default=None, after=_redis_scheme)
    namespace: str = rule(default="llm-mux", min_length=1, after=_no_braces)
    lease: float = rule(default=30_000.0, before=_lease_ms)  # ms; written "30s" (plain: seconds)
    timeout_ms: int = rule(default=250, gt=0)
    on_error: Literal["local", "fail"] = "local"


class Role(Record):
    """``[roles.NAME]``: a task type mapped to backends and an execution mode."""

    name: str = ""
    description: str = ""
    backends: list[str] = rule(min_length=1)
    execution: Execution = "first"
    min_success: int = rule(default=1, ge=1)


class RoleOverride(Record):
    """``[teams.X.roles.Y]``: replaces a role's backends (and optionally mode) for a team."""

    backends: list[str] = rule(min_length=1)
    execution: Execution | None = None
    min_success: int | None = rule(default=None, ge=1)


def _list_shorthand(value: Any) -> Any:
    """``rust = ["a", "b"]`` is short for ``rust = { backends = ["a", "b"] }``."""
    if isinstance(value, dict):
        return {k: {"backends": v} if isinstance(v, list) else v for k, v in value.items()}
    return value


class Team(Record):
    """``[teams.NAME]``: detected from marker files; overrides roles, names a verify command."""

    name: str = ""
    description: str = ""
    detect: list[str] = rule(factory=list)
    verify: str | None = None
    roles: dict[str, RoleOverride] = rule(factory=dict, before=_list_shorthand)


class Project(Record):
    """``[ecosystems.E.projects.P]``: one project of an ecosystem."""

    name: str = ""
    description: str = ""
    path: str = ""
    type: str = ""
    depends_on: list[str] = rule(factory=list)
    tags: list[str] = rule(factory=list)


class Ecosystem(Record):
    """``[ecosystems.NAME]``: related projects and the knowledge they share."""

    name: str = ""
    description: str = ""
    knowledge: list[str] = rule(factory=list)
    projects: dict[str, Project] = rule(factory=dict)


def _seconds(value: str | float) -> float:
    if isinstance(value, str):
        from llm_mux.workflow.durations import parse_duration

        return parse_duration(value) / 1000
    if value < 0:
        raise ValueError("grace must not be negative")
    return float(value)


def _grace(value: str | float) -> str | float:
    _seconds(value)
    return value


class Serve(Record):
    """``[serve]``: where ``llm-mux serve`` listens and who may call it (SPEC §9)."""

    host: str = "127.0.0.1"
    port: int = rule(default=4141, ge=0, le=65535)
    api_keys: list[str] = rule(factory=list)
    models: list[str] | None = None
    max_body_mb: float = rule(default=16, gt=0)
    grace: str | float = rule(default="30s", after=_grace)
    cors_origins: list[str] = rule(factory=list)

    @property
    def grace_seconds(self) -> float:
        """``grace`` in seconds: a plain number is seconds, a string gives its unit."""
        return _seconds(self.grace)


class ConfigFile(Record):
    """One config file as written; files are merged entry by entry into :class:`Config`."""

    defaults: dict[str, Any] = rule(factory=dict)
    serve: dict[str, Any] = rule(factory=dict)
    backends: dict[str, dict[str, Any]] = rule(factory=dict)
    roles: dict[str, dict[str, Any]] = rule(factory=dict)
    teams: dict[str, dict[str, Any]] = rule(factory=dict)
    ecosystems: dict[str, dict[str, Any]] = rule(factory=dict)
    shared: dict[str, Any] = rule(factory=dict)
