"""Helpers for workflow end-to-end tests: a config of fake backends, workflow files, runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

FAKES = Path(__file__).resolve().parent
LLM = FAKES / "wf_llm.sh"

CONFIG = f"""
[backends.claude]
command = "{LLM}"
args = ["claude"]

[backends.codex]
command = "{LLM}"
args = ["codex"]

[backends.gemini]
command = "{LLM}"
args = ["gemini"]

[backends.echo]
type = "mock"
echo = true

[roles.analyzer]
description = "Code analysis tasks"
backends = ["claude", "codex"]
execution = "parallel"

[roles.coder]
backends = ["claude"]
execution = "fallback"

[roles.quick]
backends = ["echo"]
"""


def write_config(directory: Path, extra: str = "") -> Path:
    """The fake-backend config (plus ``extra`` TOML) as a file for ``--config``."""
    path = directory / "wf-config.toml"
    path.write_text(CONFIG + extra, encoding="utf-8")
    return path


def write_workflow(project: Path, name: str, text: str) -> Path:
    """``project/.llm-mux/workflows/NAME.toml``."""
    directory = project / ".llm-mux" / "workflows"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def shell_steps(*steps: tuple[str, str], **common: Any) -> str:
    """TOML for shell steps given as (name, run) pairs with shared extra keys."""
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in common.items())
    return "".join(
        f'[[steps]]\nname = "{n}"\ntype = "shell"\nrun = {json.dumps(r)}\n{extra}' for n, r in steps
    )


def document(stdout: str) -> dict[str, Any]:
    """The one JSON document of ``--output json`` (fails if there is anything else)."""
    data: dict[str, Any] = json.loads(stdout)
    return data


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``llm-mux ARGS`` in the background (for interruption tests)."""
    from tests.conftest import llm_mux_executable

    return subprocess.Popen(
        [llm_mux_executable(), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def wait_for_file(path: Path, within: float = 10.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} was not written")


def interrupt(proc: subprocess.Popen[str], signum: int = signal.SIGINT) -> tuple[float, str, str]:
    """Send ``signum``; return how long the process took to exit, and its output."""
    sent = time.monotonic()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    return time.monotonic() - sent, out, err


def alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"
