"""Shared fixtures: every test runs in its own HOME with a clean environment.

`cli` runs the real installed ``llm-mux`` executable as a subprocess, the way users do,
and returns its exit code, stdout and stderr separately.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["tests.fakes.fixtures", "tests.fakes.redis_server", "tests.fakes.postgres"]

REPO = Path(__file__).resolve().parent.parent
_SECRET_HINTS = ("API_KEY", "TOKEN", "SECRET", "PASSWORD")


def slack() -> float:
    """How many times longer than on an idle machine things take right now.

    A promise such as "stopped within 2 s" holds for a process that gets a CPU; on a machine
    running more work than it has cores, every step waits its turn. Timing bounds are twice
    the promise times this factor: 1 on an idle machine (the bound stays strict), the
    runnable tasks per core under load (the 1-minute load average).
    """
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def within(promise: float) -> float:
    """The bound a test asserts for ``promise`` seconds: twice it, times :func:`slack`."""
    return 2 * promise * slack()


def llm_mux_executable() -> str:
    """The console script installed beside the running interpreter."""
    candidate = Path(sys.executable).parent / "llm-mux"
    return str(candidate) if candidate.exists() else "llm-mux"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private HOME and XDG_CONFIG_HOME, no API keys, cwd in a temp project dir.

    ``init`` probes model servers on loopback: here it looks only at a port this test holds
    (bound, never listening: refused at once), never at servers other programs started.
    """
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in list(os.environ):
        if any(hint in name for hint in _SECRET_HINTS) or name == "CLAUDECODE":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{held.getsockname()[1]}")
        monkeypatch.setenv("LLM_MUX_INIT_SERVERS", "")
        yield home


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``llm-mux ARGS`` and capture exit code, stdout and stderr apart."""

    def run(
        *args: str,
        cwd: Path | None = None,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> CliResult:
        timeout *= slack()
        proc = subprocess.run(
            [llm_mux_executable(), *args],
            cwd=cwd or Path.cwd(),
            input=input,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a config file from TOML text and return its path."""

    def write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
