"""A real Redis on 127.0.0.1 for the whole test run, and Redis faults.

``redis_server`` starts Debian's ``redis-server`` once per session on a free port, without
persistence, and stops it by PID. ``redis_ns`` gives each test a fresh namespace, so tests
never see each other's limits. Outside CI a machine without ``redis-server`` (or without
the ``redis`` package) skips these tests, naming what to install; in CI (``CI`` set) that
is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_WITHIN = 10.0  # s; it is ready in milliseconds when the machine is idle


@dataclass
class RedisServer:
    port: int
    pid: int
    password: str | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"


def _missing(what: str) -> None:
    message = f"{what}: install it to run the shared-limits tests"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int, password: str | None) -> bool:
    auth = f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n" if password else ""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall((auth + "*1\r\n$4\r\nPING\r\n").encode())
            return b"+PONG" in _read_some(sock)
    except OSError:
        return False


def _read_some(sock: socket.socket) -> bytes:
    data = b""
    while b"PONG" not in data and b"-" not in data[:1]:
        chunk = sock.recv(256)
        if not chunk:
            break
        data += chunk
    return data


def start_redis(
    directory: Path, password: str | None = None
) -> tuple[RedisServer, subprocess.Popen[bytes]]:
    """Start ``redis-server`` on a free port; returns once it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server not found (Debian package redis-server)")
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("the redis package is not installed (pip install 'llm-mux[redis]')")
    port = free_port()
    argv = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(directory), "--daemonize", "no"]
    if password:
        argv += ["--requirepass", password]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_WITHIN
    while not _ping(port, password):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_redis(proc)
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.005)
    return RedisServer(port, proc.pid, password), proc


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    """Stop by PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the whole test run."""
    server, proc = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_redis(proc)


@pytest.fixture
def redis_ns(redis_server: RedisServer) -> str:
    """A namespace no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def refused_port() -> int:
    """A port nothing listens on (connecting is refused)."""
    return free_port()


class SilentServer:
    """Accepts connections, counts them, reads what is sent and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()
