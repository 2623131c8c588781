"""Fixtures for backend tests: a fake LLM server on 127.0.0.1 and fake CLIs on PATH.

The fake CLIs are the scripts beside this file. On PATH, the imitations of agent CLIs keep
their real names (``claude``, ``codex``, ``gemini``); every other script is ``fake-NAME``
(``fake-echo``, ``fake-hang``, …) so none shadows a system command.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_mux.config import Backend, Config, Defaults, Role, Team
from llm_mux.schema import validate
from tests.fakes.server import FakeLLMServer

FAKES = Path(__file__).resolve().parent
AGENT_IMITATIONS = ("claude", "codex", "gemini")
FAKE_SCRIPTS = (
    "argv_info.py",
    "big.sh",
    "cat.sh",
    "claude.py",
    "codex.py",
    "echo.sh",
    "exit.sh",
    "flaky.sh",
    "gemini.py",
    "hang.sh",
    "invalid_utf8.sh",
    "noop.sh",
    "replay.py",
    "say.sh",
    "sleep.sh",
)


def alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, within: float = 5.0) -> bool:
    """Wait until ``pid`` is gone (or a zombie); False if it still runs after ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def read_pid(path: Path, within: float = 5.0) -> int:
    """The pid a fake wrote to ``path``, waiting for it to appear."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = path.read_text().strip() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"no pid written to {path}")


def fake_name(script: Path) -> str:
    """The command name of a fake script on PATH."""
    stem = script.stem.replace("_", "-")
    return stem if stem in AGENT_IMITATIONS else f"fake-{stem}"


@pytest.fixture(scope="session")
def fake_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of fake CLIs; Python fakes run with this interpreter (no start-up lag)."""
    directory = tmp_path_factory.mktemp("fake-bin")
    for name in FAKE_SCRIPTS:
        script, target = FAKES / name, directory / fake_name(FAKES / name)
        if script.suffix == ".sh":
            target.symlink_to(script)
        else:
            target.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
            target.chmod(0o755)
    return directory


@pytest.fixture
def fake_path(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the fake CLIs first on PATH, for this process and the commands it starts."""
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake_bin


@pytest.fixture
def llm_server() -> Iterator[FakeLLMServer]:
    """A fresh fake LLM server for one test."""
    server = FakeLLMServer().start()
    try:
        yield server
    finally:
        server.stop()


def make_config(
    backends: dict[str, dict[str, Any]],
    roles: dict[str, dict[str, Any]] | None = None,
    *,
    defaults: dict[str, Any] | None = None,
    teams: dict[str, dict[str, Any]] | None = None,
) -> Config:
    """A validated :class:`Config` from plain tables, as the loader would build it."""
    return Config(
        defaults=validate(Defaults, defaults or {}),
        backends={n: validate(Backend, {**b, "name": n}) for n, b in backends.items()},
        roles={n: validate(Role, {**r, "name": n}) for n, r in (roles or {}).items()},
        teams={n: validate(Team, {**t, "name": n}) for n, t in (teams or {}).items()},
    )
