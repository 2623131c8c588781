"""Starting ``llm-mux serve`` as a subprocess on a free port, for the serve tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import llm_mux_executable

KEY = "client-key-0123456789"
UPSTREAM_KEY = "sk-upstream-secret-9876543210"


@dataclass
class Served:
    """A running server: its process, base URL and stderr log."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)


def start(config: str, directory: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """Start a server for ``config``; wait (20 s at most) until it listens."""
    path = directory / "serve.toml"
    path.write_text(config)
    log = directory / "serve.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [llm_mux_executable(), "serve", "--config", str(path), "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, **(env or {})},
            cwd=directory,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        for line in text.splitlines():
            if "listening on http://" in line:
                url = line.split("listening on ", 1)[1].split(" ", 1)[0]
                return Served(proc, url, log)
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {text}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("serve did not start within 20 s")


def stop(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(15)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()


@contextmanager
def serving(
    config: str, directory: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Served]:
    served = start(config, directory, *args, env=env)
    try:
        yield served
    finally:
        stop(served)
