"""A real PostgreSQL server on 127.0.0.1 for the whole test run, and a fresh database per test.

Debian's ``postgresql-15`` binaries (``pg_config --bindir``, else /usr/lib/postgresql/*/bin).
``initdb`` and ``postgres`` refuse to run as root, and CI runs as root, so as root both run as
the ``postgres`` system user in a temporary directory it owns. ``initdb -A trust --no-sync``
and ``postgres`` without fsync keep start-up well under a second. The server is stopped with
SIGINT by PID ("fast" shutdown: SIGTERM would wait for every client). Outside CI a missing
PostgreSQL skips the tests that need it, naming the package; with ``CI`` set it fails them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PACKAGE = "postgresql-15"
READY_TIMEOUT_S = 30.0


@dataclass
class PostgresServer:
    """A running server: where it listens and how to make a database on it."""

    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        user = "postgres" + (f":{password}" if password else "")
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _bindir() -> Path | None:
    config = shutil.which("pg_config")
    if config:
        out = subprocess.run([config, "--bindir"], capture_output=True, text=True, check=False)
        found = Path(out.stdout.strip())
        if (found / "postgres").exists() and (found / "initdb").exists():
            return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "postgres").exists():
            return candidate
    return None


def unavailable(reason: str) -> None:
    """Skip outside CI; fail in CI, where the service must be there."""
    message = f"PostgreSQL is needed ({reason}); install the Debian package {PACKAGE}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _as_owner() -> dict[str, Any]:
    """Popen arguments that run a command as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(bindir: Path) -> PostgresServer:
    directory = Path(tempfile.mkdtemp(prefix="llm-mux-pg-"))
    owner = _as_owner()
    if owner:
        os.chown(directory, owner["user"], owner["group"])
    data = directory / "data"
    initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "--no-sync"]
    initdb += ["-U", "postgres", "-E", "UTF8", "--locale=C"]
    subprocess.run(initdb, check=True, capture_output=True, cwd=directory, **owner)
    port = free_port()
    command = [str(bindir / "postgres"), "-D", str(data), "-p", str(port)]
    for setting in (
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "listen_addresses=127.0.0.1",
        f"unix_socket_directories={directory}",
        "max_connections=200",
    ):
        command += ["-c", setting]
    log = open(directory / "server.log", "wb")  # noqa: SIM115 (closed with the server)
    process = subprocess.Popen(command, stdout=log, stderr=log, cwd=directory, **owner)
    server = PostgresServer(port, process, directory)
    _wait_ready(server)
    return server


def _wait_ready(server: PostgresServer) -> None:
    import psycopg

    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            log = (server.directory / "server.log").read_text(errors="replace")
            raise RuntimeError(f"postgres exited: {log[-2000:]}")
        try:
            psycopg.connect(server.url(), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def stop_server(server: PostgresServer) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.process.pid, signal.SIGINT)
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test run."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg package, from llm-mux[postgres], is missing")
    bindir = _bindir()
    if bindir is None:
        unavailable("no postgres binaries found")
    assert bindir is not None
    server = start_server(bindir)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the test run's server."""
    return postgres_server.url(postgres_server.create_database())
