"""The config ``llm-mux init`` writes from what :mod:`llm_mux.machine` found.

Every detected backend becomes a table with a comment saying why it is there, and three
roles are proposed over them; keys are written as ``${VAR}`` references, never copied.
"""

from __future__ import annotations

import json
from typing import Any

from llm_mux.machine import Detection, Found


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _table(header: str, values: dict[str, Any], comment: str = "") -> str:
    lines = [f"# {comment}"] if comment else []
    lines.append(f"[{header}]")
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines)


def propose_roles(detection: Detection) -> dict[str, dict[str, Any]]:
    """``analyzer`` in parallel over what exists, ``quick`` first-fastest, a ``fallback`` chain."""
    names = detection.names()
    if not names:
        return {}
    by_speed = [f.name for f in sorted(detection.backends, key=lambda f: f.speed)]
    return {
        "analyzer": {
            "description": "Independent opinions from several backends at once",
            "backends": names[:3],
            "execution": "parallel",
        },
        "quick": {"description": "Fast answers", "backends": by_speed, "execution": "first"},
        "fallback": {
            "description": "Try each backend in order until one answers",
            "backends": names,
            "execution": "fallback",
        },
    }


def render_config(detection: Detection) -> str:
    """The starter config as TOML text, with a comment saying why each backend is there."""
    parts = ["# llm-mux configuration written by `llm-mux init`. See `llm-mux --help`."]
    if not detection.backends:
        parts.append(
            "# No agent CLI, local server or API key was found. A mock backend lets you\n"
            "# try workflows offline; replace it with a real one when you have it."
        )
        detection = Detection([Found("mock", {"type": "mock", "echo": True}, "offline stand-in")])
    for found in detection.backends:
        parts.append(_table(f"backends.{found.name}", found.table, found.reason))
    for name, role in propose_roles(detection).items():
        parts.append(_table(f"roles.{name}", role))
    return "\n\n".join(parts) + "\n"
