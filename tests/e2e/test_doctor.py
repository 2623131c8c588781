"""``llm-mux doctor`` against real commands and a real HTTP server on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.server import FakeLLMServer, hang


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    fake = FakeLLMServer(require_key="sk-doctor-secret-1234").start()
    yield fake
    fake.stop()


def config_for(tmp_path: Path, server: FakeLLMServer) -> Path:
    path = tmp_path / "doctor.toml"
    path.write_text(
        f"""
[backends.shell]
command = "sh"

[backends.missing]
command = "no-such-llm-cli"

[backends.off]
command = "no-such-llm-cli"
enabled = false

[backends.api]
command = "{server.url}/v1"
model = "m"
api_key = "${{DOCTOR_KEY}}"

[backends.wrongkey]
command = "{server.url}/v1"
model = "m"
api_key = "${{WRONG_KEY}}"

[backends.unset]
command = "{server.url}/v1"
model = "m"
api_key = "${{NOT_SET_ANYWHERE}}"

[backends.claude-api]
type = "anthropic"
command = "{server.url}"
model = "m"
api_key = "${{DOCTOR_KEY}}"

[backends.ollama]
type = "ollama"
command = "{server.url}"
model = "m"
api_key = "${{DOCTOR_KEY}}"

[backends.refused]
command = "http://127.0.0.1:9/v1"
model = "m"
"""
    )
    return path


def test_doctor_reports_each_backend(cli, tmp_path: Path, server: FakeLLMServer) -> None:
    env = {"DOCTOR_KEY": "sk-doctor-secret-1234", "WRONG_KEY": "sk-wrong-key-5678"}
    result = cli("doctor", "-o", "json", "--config", str(config_for(tmp_path, server)), env=env)
    assert result.exit_code == 1  # enabled backends are unavailable
    report = json.loads(result.stdout)["backends"]
    available = {name: entry["available"] for name, entry in report.items()}
    assert available == {
        "shell": True,
        "missing": False,
        "off": False,
        "api": True,
        "wrongkey": False,
        "unset": False,
        "claude-api": True,
        "ollama": True,
        "refused": False,
    }
    assert "not found" in report["missing"]["detail"]
    assert report["off"]["enabled"] is False
    assert "NOT_SET_ANYWHERE" in report["unset"]["detail"]
    assert "401" in report["wrongkey"]["detail"] or "Auth" in report["wrongkey"]["detail"]
    for secret in env.values():
        assert secret not in result.output
    assert server.count("/v1/chat/completions") == 0  # no tokens spent


def test_doctor_console_and_exit_zero_when_all_fine(cli, tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        '[backends.shell]\ncommand = "sh"\n[backends.off]\ncommand = "x"\nenabled = false\n'
    )
    result = cli("doctor", "--config", str(path))
    assert result.exit_code == 0, result.output
    assert "available" in result.stdout and "disabled" in result.stdout


def test_doctor_checks_concurrently_within_five_seconds(cli, tmp_path: Path) -> None:
    servers = [FakeLLMServer().start() for _ in range(3)]
    try:
        for fake in servers:
            fake.script(*(hang() for _ in range(3)))
        lines = [
            f'[backends.h{i}]\ncommand = "{fake.url}/v1"\nmodel = "m"\n'
            for i, fake in enumerate(servers)
        ]
        path = tmp_path / "hang.toml"
        path.write_text("\n".join(lines))
        started = time.monotonic()
        result = cli("doctor", "-o", "json", "--config", str(path))
        elapsed = time.monotonic() - started
    finally:
        for fake in servers:
            fake.stop()
    assert result.exit_code == 1
    assert all(not e["available"] for e in json.loads(result.stdout)["backends"].values())
    assert elapsed < 10  # three 5 s probes at once, not 15 s in a row
