"""Every config and workflow key, given every kind of wrong value, keeps its exact message.

The corpus is generated: each field of each table and step type is set to a value of each
TOML type (and a few edge values), and the outcome is compared with the recorded one in
``tests/data/validation_messages.json``: the error message, or the validated value when it
is accepted (so coercions such as ``"5"`` for an integer stay as they are). Regenerate with
``LLM_MUX_RECORD_MESSAGES=1`` only when a message is meant to change.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_mux.config import load_config
from llm_mux.errors import ConfigError
from llm_mux.schema import dump
from llm_mux.workflow.model import parse_workflow

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "validation_messages.json"
RECORD = os.environ.get("LLM_MUX_RECORD_MESSAGES") == "1"

VALUES: list[Any] = [
    "s",
    "",
    "5",
    "true",
    "90s",
    0,
    -1,
    1,
    70000,
    1.5,
    2.0,
    -0.5,
    math.inf,
    math.nan,
    True,
    False,
    [],
    ["a"],
    [1],
    {},
    {"a": 1},
    {"a": "b"},
    datetime.date(2020, 1, 2),
]

CONFIG_TABLES: dict[str, tuple[str, dict[str, Any]]] = {
    # table -> (header, a valid entry the field is added to)
    "defaults": ("defaults", {}),
    "serve": ("serve", {}),
    "shared": ("shared", {"redis_url": "redis://127.0.0.1:1/0"}),
    "backend": ("backends.x", {"command": "c"}),
    "http backend": ("backends.x", {"type": "openai", "command": "http://h", "model": "m"}),
    "role": ("roles.r", {"backends": ["x"]}),
    "team": ("teams.t", {}),
    "team role": ("teams.t.roles.r", {"backends": ["x"]}),
    "ecosystem": ("ecosystems.e", {}),
    "project": ("ecosystems.e.projects.p", {}),
}

CONFIG_FIELDS: dict[str, list[str]] = {
    "defaults": ["timeout", "max_concurrent", "command_wrapper", "max_output_mb", "memory_url"],
    "serve": ["host", "port", "api_keys", "models", "max_body_mb", "grace", "cors_origins"],
    "shared": ["redis_url", "namespace", "lease", "timeout_ms", "on_error"],
    "backend": [
        "command",
        "args",
        "model",
        "api_key",
        "type",
        "enabled",
        "timeout",
        "max_retries",
        "retry_delay",
        "retry_rate_limit",
        "retry_timeout",
        "env",
        "max_tokens",
        "temperature",
        "system",
        "params",
        "prompt_via",
        "stdin_fallback",
        "max_concurrent",
        "rpm",
        "tpm",
        "burst",
        "rate_group",
        "stream",
        "api_version",
        "context",
        "parallel",
        "threads",
        "response",
        "responses",
        "echo",
        "delay",
        "fail",
        "fail_times",
        "retry_after",
        "size",
        "name",
        "comand",
    ],
    "http backend": ["model", "command", "type"],
    "role": ["description", "backends", "execution", "min_success", "name", "mode"],
    "team": ["description", "detect", "verify", "roles", "name", "verfy"],
    "team role": ["backends", "execution", "min_success", "description"],
    "ecosystem": ["description", "knowledge", "projects", "name", "project"],
    "project": ["description", "path", "type", "depends_on", "tags", "name", "tag"],
}

STEP_BASES: dict[str, dict[str, Any]] = {
    "shell": {"type": "shell", "run": "true"},
    "query": {"type": "query", "role": "r", "prompt": "p"},
    "apply": {"type": "apply", "source": "s"},
    "store": {"type": "store", "prompt": "p"},
    "input": {"type": "input", "prompt": "p"},
}
COMMON_STEP_FIELDS = [
    "name",
    "depends_on",
    "if",
    "when",
    "for_each",
    "max_parallel",
    "continue_on_error",
    "timeout",
    "retries",
    "retry_delay",
]
STEP_FIELDS: dict[str, list[str]] = {
    "shell": ["run", "prompt", "runn"],
    "query": ["role", "backend", "prompt", "parallel", "min_success", "output_schema", "run"],
    "apply": [
        "source",
        "edits",
        "verify",
        "verify_retries",
        "verify_retry_prompt",
        "rollback_on_failure",
        "allow_paths",
    ],
    "store": ["prompt", "role"],
    "input": ["prompt", "options", "default"],
}
HEADER_FIELDS = [
    "name",
    "description",
    "version",
    "timeout",
    "continue_on_error",
    "output",
    "args",
    "roles",
    "steps",
    "descripton",
]
ARG_FIELDS = ["required", "default", "description", "help"]


def toml_value(value: Any) -> str:
    """``value`` as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # type: ignore[no-any-return]


def table(header: str, entries: dict[str, Any]) -> str:
    lines = [f"[{header}]"] + [f"{k} = {toml_value(v)}" for k, v in entries.items()]
    return "\n".join(lines) + "\n"


# (case name, file text, (table, entry name, key) whose validated value is recorded)
Case = tuple[str, str, tuple[str, str, str] | None]
ENTRY_OF = {
    "backend": ("backends", "x"),
    "http backend": ("backends", "x"),
    "role": ("roles", "r"),
    "team": ("teams", "t"),
    "team role": ("teams", "t"),
    "ecosystem": ("ecosystems", "e"),
    "project": ("ecosystems", "e"),
}


def config_cases() -> Iterator[Case]:
    for kind, fields in CONFIG_FIELDS.items():
        header, base = CONFIG_TABLES[kind]
        for key in fields:
            for value in VALUES:
                text = "" if kind.endswith("backend") else '[backends.x]\ncommand = "c"\n'
                if kind in ("role", "team role"):
                    text += '[roles.r]\nbackends = ["x"]\n' if kind == "team role" else ""
                where = (*ENTRY_OF.get(kind, (kind, "")), key)
                text += table(header, {**base, key: value})
                yield f"{kind}.{key}={value!r}", text, where
    yield "top.unknown", '[backend.x]\ncommand = "c"\n', None
    yield "top.scalar", 'roles = "x"\n', None
    yield "role.missing backends", '[roles.r]\ndescription = "d"\n', None
    yield (
        "role.unknown backend",
        '[roles.r]\nbackends = ["y"]\n[backends.yy]\ncommand = "c"\n',
        None,
    )
    yield "team.unknown role", '[backends.x]\ncommand = "c"\n[teams.t.roles]\nrr = ["x"]\n', None
    shorthand = '[backends.x]\ncommand="c"\n[roles.r]\nbackends=["x"]\n[teams.t.roles]\nr=["x"]\n'
    yield "team.shorthand", shorthand, ("teams", "t", "roles")
    yield "backend.not a table", "backends = { x = 1 }\n", None
    yield "backend.mock", '[backends.x]\ntype = "mock"\n', ("backends", "x", "type")
    yield "backend.local", '[backends.x]\ntype = "local"\n', ("backends", "x", "type")
    yield "backend.ollama no model", '[backends.x]\ntype = "ollama"\ncommand = "http://h"\n', None


def workflow_cases() -> Iterator[tuple[str, str, str | None]]:
    """(case name, file text, the step key whose validated value is recorded)."""
    for kind, base in STEP_BASES.items():
        for key in COMMON_STEP_FIELDS + STEP_FIELDS[kind]:
            for value in VALUES:
                step = {"name": "s", **base, key: value}
                yield f"{kind}.{key}={value!r}", "[[steps]]\n" + _body(step), key
    shell = "[[steps]]\n" + _body({"name": "s", **STEP_BASES["shell"]})
    for key in HEADER_FIELDS:
        for value in VALUES:
            yield f"header.{key}={value!r}", f"{key} = {toml_value(value)}\n" + shell, None
    for key in ARG_FIELDS:
        for value in VALUES:
            yield f"arg.{key}={value!r}", table("args.a", {key: value}) + shell, None
    for key in ["backends", "execution", "min_success", "mode"]:
        for value in VALUES:
            entries = {"backends": ["x"], key: value}
            yield f"roles.{key}={value!r}", table("roles.r", entries) + shell, None
    yield "step.no type", '[[steps]]\nname = "s"\n', None
    yield "step.bad type", '[[steps]]\nname = "s"\ntype = "shel"\n', None
    yield (
        "query.both",
        '[[steps]]\nname = "s"\ntype = "query"\nrole = "r"\nbackend = "b"\nprompt = "p"\n',
        None,
    )
    yield "query.neither", '[[steps]]\nname = "s"\ntype = "query"\nprompt = "p"\n', None
    yield (
        "query.parallel backend",
        ('[[steps]]\nname = "s"\ntype = "query"\nbackend = "b"\nprompt = "p"\nparallel = true\n'),
        None,
    )
    yield "apply.neither", '[[steps]]\nname = "s"\ntype = "apply"\n', None
    yield "steps.table", "[steps]\nname = 1\n", None
    yield "no steps", 'name = "w"\n', None


def _body(entries: dict[str, Any]) -> str:
    return "\n".join(f'"{k}" = {toml_value(v)}' for k, v in entries.items()) + "\n"


def config_outcome(tmp_path: Path, text: str, where: tuple[str, str, str] | None) -> Any:
    """The message, or the validated value at ``where`` and the warnings."""
    path = tmp_path / "c.toml"
    path.write_text(text)
    try:
        config = load_config(config_file=path, cwd=tmp_path)
    except ConfigError as exc:
        return str(exc).replace(str(path), "<file>")
    if where is None:
        return "accepted"
    table_name, entry, key = where
    found = getattr(config, table_name)
    value = dump(found[entry] if entry else found)
    if table_name == "ecosystems" and key not in value:
        value = value["projects"].get("p", {})
    return {"value": value.get(key, "<not a field>"), "warnings": config.warnings()}


def workflow_outcome(tmp_path: Path, text: str, key: str | None) -> Any:
    path = tmp_path / "w.toml"
    path.write_text(text)
    workflow, issues = parse_workflow(path)
    outcome: dict[str, Any] = {"issues": [i.format().replace(str(path), "<file>") for i in issues]}
    if workflow.steps and key is not None:
        outcome["value"] = dump(workflow.steps[0], by_alias=True).get(key, "<not a field>")
    if workflow.args:
        outcome["args"] = {n: dump(a) for n, a in workflow.args.items()}
    if workflow.roles:
        outcome["roles"] = {n: dump(r) for n, r in workflow.roles.items()}
    outcome["header"] = [workflow.name, workflow.version, workflow.timeout, workflow.output]
    return outcome


def outcomes(tmp_path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, text, where in config_cases():
        found[f"config:{name}"] = config_outcome(tmp_path, text, where)
    for name, text, key in workflow_cases():
        found[f"workflow:{name}"] = workflow_outcome(tmp_path, text, key)
    return json.loads(json.dumps(found, default=str))  # type: ignore[no-any-return]


def test_every_message_and_accepted_value_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLM_MUX_REDIS_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    found = outcomes(tmp_path)
    if RECORD:
        rows = (
            f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(found.items())
        )
        GOLDEN.write_text("{\n" + ",\n".join(rows) + "\n}\n")
    expected = json.loads(GOLDEN.read_text())
    assert len(found) > 3000
    different = [k for k in expected if found.get(k) != expected[k]]
    report = "\n".join(
        f"{k}:\n  was {expected[k]!r}\n  now {found.get(k)!r}" for k in different[:20]
    )
    assert not different, f"{len(different)} outcomes changed:\n{report}"
    assert set(found) == set(expected)
