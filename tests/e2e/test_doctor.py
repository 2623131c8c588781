"""``llm-mux doctor`` against real commands and a real HTTP server on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.server import FakeLLMServer, answer, error, hang


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


def test_a_404_from_the_models_endpoint_is_unavailable_with_a_url_hint(cli, tmp_path: Path) -> None:
    fake = FakeLLMServer().start()
    try:
        fake.script(error(404), error(404))
        path = tmp_path / "doctor.toml"
        path.write_text(
            f'[backends.anthropic]\ntype = "anthropic"\ncommand = "{fake.url}/v1"\nmodel = "m"\n'
            f'[backends.ollama]\ntype = "ollama"\ncommand = "{fake.url}"\nmodel = "m"\n'
        )
        result = cli("doctor", "-o", "json", "--config", str(path))
    finally:
        fake.stop()
    assert result.exit_code == 1
    report = json.loads(result.stdout)["backends"]
    assert not report["anthropic"]["available"] and not report["ollama"]["available"]
    assert "/v1/v1/models answered HTTP 404" in report["anthropic"]["detail"]
    assert "without /v1" in report["anthropic"]["detail"]
    assert "/api/tags answered HTTP 404: no ollama API there" in report["ollama"]["detail"]


def test_agent_clis_report_their_version(cli, tmp_path: Path, fake_path: Path) -> None:
    stuck = tmp_path / "bin"
    stuck.mkdir()
    (stuck / "llm").write_text("#!/bin/sh\nexec sleep 60\n")  # hangs even on --version
    (stuck / "llm").chmod(0o755)
    path = tmp_path / "doctor.toml"
    path.write_text(
        '[backends.claude]\ncommand = "claude"\nargs = ["-p", "--output-format", "json"]\n'
        '[backends.codex]\ncommand = "codex"\nargs = ["exec", "--json"]\n'
        f'[backends.llm]\ncommand = "{stuck / "llm"}"\n'
    )
    started = time.monotonic()
    result = cli("doctor", "-o", "json", "--config", str(path))
    assert time.monotonic() - started < 50  # the 15 s bound, not a hang
    report = json.loads(result.stdout)["backends"]
    assert report["claude"]["available"] and "2.1.197 (Claude Code)" in report["claude"]["detail"]
    assert report["codex"]["detail"].endswith("codex-cli 0.171.0")
    assert not report["llm"]["available"]
    assert "`llm --version` gave no answer within 15 s" in report["llm"]["detail"]
    assert result.exit_code == 1


def test_probe_sends_one_tiny_prompt_and_classes_failures(
    cli, tmp_path: Path, fake_path: Path
) -> None:
    fake = FakeLLMServer().start()
    path = tmp_path / "doctor.toml"
    path.write_text(
        '[backends.claude]\ncommand = "claude"\nargs = ["-p", "--output-format", "json"]\n'
        '[backends.nologin]\ncommand = "fake-replay"\n'
        'args = ["claude-not-logged-in", "-p", "--output-format", "json"]\n'
        f'[backends.api]\ncommand = "{fake.url}/v1"\nmodel = "m"\nmax_retries = 5\n'
    )
    try:
        fake.script(answer(), answer(), error(500, "overloaded"))  # GET, GET, then the probe
        plain = cli("doctor", "-o", "json", "--config", str(path))
        assert plain.exit_code == 0, plain.stdout  # no prompt sent without --probe
        assert all("probe" not in b for b in json.loads(plain.stdout)["backends"].values())
        assert [r.method for r in fake.requests] == ["GET"]
        result = cli("doctor", "--probe", "-o", "json", "--config", str(path))
    finally:
        fake.stop()
    assert "may cost tokens" in result.stderr
    assert result.exit_code == 1
    report = json.loads(result.stdout)["backends"]
    assert report["claude"]["probe"]["ok"] is True
    assert report["claude"]["probe"]["answer"] == "claude says: Reply with the single word: ok"
    assert report["nologin"]["probe"]["class"] == "Auth"
    assert "probe failed: Auth: Not logged in" in report["nologin"]["detail"]
    assert report["api"]["probe"]["class"] == "ServerError"
    assert report["api"]["probe"]["status"] == 500
    assert len([r for r in fake.requests if r.method == "POST"]) == 1  # never retried
