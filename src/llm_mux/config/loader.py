"""Finding, parsing, merging and validating config files.

Every failure becomes a :class:`ConfigError` naming the file and, where it can be found, the
line and column, so the user goes straight to the mistake.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llm_mux.config.models import (
    REDIS_URL_ENV,
    Backend,
    ConfigFile,
    Defaults,
    Ecosystem,
    Role,
    Serve,
    Shared,
    Team,
)
from llm_mux.config.settings import Config
from llm_mux.errors import ConfigError, did_you_mean
from llm_mux.schema import Invalid, Record, fields, validate

PROJECT_DIR = ".llm-mux"
CONFIG_NAME = "config.toml"
_TABLES = ("backends", "roles", "teams", "ecosystems")
_MODELS: dict[str, type[Record]] = {
    "backends": Backend,
    "roles": Role,
    "teams": Team,
    "ecosystems": Ecosystem,
}


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/llm-mux``, default ``~/.config/llm-mux``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "llm-mux"


def find_project_dir(start: Path) -> Path | None:
    """The nearest ``.llm-mux`` directory walking up from ``start`` (inclusive)."""
    for directory in (start, *start.parents):
        candidate = directory / PROJECT_DIR
        if candidate.is_dir():
            return candidate
    return None


ConfigFiles = Path | str | Sequence[Path | str] | None  # ``--config`` files, in order


def config_files(cwd: Path, explicit: Sequence[Path] = ()) -> list[Path]:
    """The config files that apply, earliest (lowest priority) first.

    Anything at a config path counts (a directory too), so that reading it reports the
    problem instead of the file being skipped without a word.
    """
    files = []
    user = user_config_dir() / CONFIG_NAME
    if user.exists():
        files.append(user)
    project = find_project_dir(cwd)
    if project is not None and (project / CONFIG_NAME).exists():
        files.append(project / CONFIG_NAME)
    files.extend(explicit)
    return files


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=path) from None
    except IsADirectoryError:
        raise ConfigError("cannot read config file: it is a directory", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read config file: {reason}", file=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(exc, path, text) from None


def toml_error(exc: tomllib.TOMLDecodeError, path: Path, text: str = "") -> ConfigError:
    """Turn tomllib's message ``… (at line L, column C)`` into a located ConfigError."""
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match is not None:
        line, column = int(match.group(1)), int(match.group(2))
    elif "(at end of document)" in message:
        lines = text.rstrip("\n").split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    else:
        return ConfigError(f"invalid TOML: {message}", file=path)
    reason = re.sub(r"\s*\(at [^)]*\)$", "", message)
    return ConfigError(f"invalid TOML: {reason}", file=path, line=line, column=column)


def locate_key(path: Path, table: Sequence[str], key: str | None) -> int | None:
    """Best-effort line of ``key`` inside ``[table]`` of a TOML file, for error messages."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    header = re.compile(r"^\s*\[+\s*" + r"\s*\.\s*".join(_key_rx(p) for p in table) + r"\s*\]+")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None or key is None:
        return None if start is None else start + 1
    key_rx = re.compile(r"^\s*" + _key_rx(key) + r"\s*=")
    for i in range(start + 1, len(lines)):
        if re.match(r"^\s*\[", lines[i]):
            break
        if key_rx.match(lines[i]):
            return i + 1
    return start + 1


def _key_rx(part: str) -> str:
    escaped = re.escape(part)
    return f"(?:{escaped}|\"{escaped}\"|'{escaped}')"


def _model_error(exc: Invalid, model: type[Record], path: Path, table: list[str]) -> ConfigError:
    """The first validation problem as a ConfigError naming the key, table and fix."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    section = "[" + ".".join(table) + "]"
    key: str | None
    if error["type"] == "extra_forbidden":
        key = loc[-1]
        known = _known_keys(model, loc[:-1])
        message = f"unknown key '{key}' in {section}{did_you_mean(key, known)}"
    elif error["type"] == "literal_error":
        key = ".".join(loc)
        expected = error.get("ctx", {}).get("expected", "")
        message = (
            f"invalid value {error['input']!r} for '{key}' in {section}: "
            f"allowed values are {expected}"
        )
    elif loc:
        key = ".".join(loc)
        message = f"invalid value for '{key}' in {section}: {error['msg']}"
    else:
        text = error["msg"].removeprefix("Value error, ")
        quoted = re.search(r"'(\w+)'", text)
        key = quoted.group(1) if quoted else None
        message = f"{section}: {text}"
    line = locate_key(path, table, loc[0] if loc else key)
    return ConfigError(message, file=path, line=line)


def _known_keys(model: type[Record], loc: list[str]) -> list[str]:
    """Field names of the (nested) record at ``loc``, for did-you-mean."""
    current: type[Record] | None = model
    for part in loc:
        field = next((f for f in fields(current) if f.key == part), None) if current else None
        if field is None:
            break
        current = field.record
    return [f.key for f in fields(current) if f.key != "name"] if current else []


def _check_top_level(raw: dict[str, Any], path: Path) -> None:
    try:
        validate(ConfigFile, raw)
    except Invalid as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0])
        if error["type"] == "extra_forbidden":
            hint = did_you_mean(key, ("defaults", "shared", "serve", *_TABLES))
            raise ConfigError(f"unknown table '{key}'{hint}", file=path) from None
        raise ConfigError(f"'{key}' must be a table", file=path) from None


def _validate_entry(kind: str, name: str, raw: Any, path: Path) -> Record:
    model = _MODELS[kind]
    if not isinstance(raw, dict):
        raise ConfigError(f"[{kind}.{name}] must be a table", file=path)
    try:
        return validate(model, {**raw, "name": name})
    except Invalid as exc:
        raise _model_error(exc, model, path, [kind, name]) from None


def _validate_defaults(raw: dict[str, Any], path: Path) -> None:
    try:
        validate(Defaults, raw)
    except Invalid as exc:
        raise _model_error(exc, Defaults, path, ["defaults"]) from None


def _validate_serve(raw: dict[str, Any], path: Path) -> None:
    try:
        validate(Serve, raw)
    except Invalid as exc:
        raise _model_error(exc, Serve, path, ["serve"]) from None


def _validate_shared(raw: dict[str, Any], path: Path) -> None:
    try:
        validate(Shared, raw)
    except Invalid as exc:
        raise _model_error(exc, Shared, path, ["shared"]) from None


def merge_files(files: Sequence[Path]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Read files in order; ``[defaults]``, ``[shared]`` and ``[serve]`` merge key by key,
    other tables entry by entry.

    Returns the merged defaults and, per table, ``name -> (model, source file)``; the merged
    ``[shared]`` table, when any file has one, is ``entries["shared"][""]``; the merged
    ``[serve]`` is ``entries["serve"]``.
    """
    defaults: dict[str, Any] = {}
    entries: dict[str, dict[str, Any]] = {table: {} for table in (*_TABLES, "shared")}
    entries["serve"] = {}
    for path in files:
        raw = _read_toml(path)
        _check_top_level(raw, path)
        if "defaults" in raw:
            _validate_defaults(raw["defaults"], path)
            defaults.update(raw["defaults"])
        if "serve" in raw:
            _validate_serve(raw["serve"], path)
            entries["serve"].update(raw["serve"])
        if "shared" in raw:
            _validate_shared(raw["shared"], path)
            merged = {**entries["shared"].get("", ({}, path))[0], **raw["shared"]}
            entries["shared"][""] = (merged, path)
        for table in _TABLES:
            for name, value in raw.get(table, {}).items():
                entries[table][name] = (_validate_entry(table, name, value, path), path)
    return defaults, entries


def _shared(entries: dict[str, dict[str, Any]]) -> Shared | None:
    """The merged ``[shared]`` table; it must name a Redis unless the environment does."""
    found = entries["shared"].get("")
    if found is None:
        return None
    raw, path = found
    if not raw.get("redis_url") and not os.environ.get(REDIS_URL_ENV):
        raise ConfigError(
            "[shared]: 'redis_url' is required",
            file=path,
            line=locate_key(path, ["shared"], None),
            hint=f'redis_url = "redis://HOST:6379/0", or set {REDIS_URL_ENV}',
        )
    return validate(Shared, raw)


def _check_references(entries: dict[str, dict[str, Any]]) -> None:
    """Roles must name known backends; team overrides must name known roles and backends."""
    backends = entries["backends"]
    roles = entries["roles"]
    for name, (role, path) in roles.items():
        _check_backends(role.backends, backends, f"role '{name}'", path, ["roles", name])
    for team_name, (team, path) in entries["teams"].items():
        for role_name, override in team.roles.items():
            table = ["teams", team_name, "roles", role_name]
            if role_name not in roles:
                hint = did_you_mean(role_name, roles)
                known = ", ".join(roles) or "none"
                raise ConfigError(
                    f"team '{team_name}' overrides unknown role '{role_name}'{hint}; "
                    f"known roles: {known}",
                    file=path,
                    line=locate_key(path, table, None) or locate_key(path, table[:2], "roles"),
                )
            owner = f"team '{team_name}' role '{role_name}'"
            _check_backends(override.backends, backends, owner, path, table)


def _check_backends(
    names: Sequence[str], backends: Mapping[str, Any], owner: str, path: Path, table: list[str]
) -> None:
    for backend in names:
        if backend not in backends:
            hint = did_you_mean(backend, backends)
            known = ", ".join(backends) or "none"
            raise ConfigError(
                f"{owner} names unknown backend '{backend}'{hint}; known backends: {known}",
                file=path,
                line=locate_key(path, table, "backends"),
            )


def load_config(
    config_file: ConfigFiles = None,
    *,
    cwd: Path | None = None,
) -> Config:
    """Load, merge and validate the user, project and explicit config files (SPEC §1).

    Several explicit files merge in order, like the user and project files before them.
    """
    here = (cwd or Path.cwd()).resolve()
    if config_file is None:
        explicit: list[Path] = []
    elif isinstance(config_file, str | Path):
        explicit = [Path(config_file)]
    else:
        explicit = [Path(f) for f in config_file]
    files = config_files(here, explicit)
    defaults_raw, entries = merge_files(files)
    _check_references(entries)
    project = find_project_dir(here)
    config = Config(
        defaults=validate(Defaults, defaults_raw),
        backends={n: m for n, (m, _) in entries["backends"].items()},
        roles={n: m for n, (m, _) in entries["roles"].items()},
        teams={n: m for n, (m, _) in entries["teams"].items()},
        ecosystems={n: m for n, (m, _) in entries["ecosystems"].items()},
        serve=validate(Serve, entries["serve"]),
        shared=_shared(entries),
        sources=tuple(files),
        project_root=project.parent if project is not None else None,
    )
    _check_redis_installed(config)
    return config


def _check_redis_installed(config: Config) -> None:
    """Shared limits need the ``redis`` extra; say so before anything runs (exit 2)."""
    if config.shared_settings() is None:
        return
    import importlib.util

    try:
        found = importlib.util.find_spec("redis") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ConfigError(
            "shared limits ([shared] or LLM_MUX_REDIS_URL) need the redis package",
            hint="pip install 'llm-mux[redis]'",
        )
