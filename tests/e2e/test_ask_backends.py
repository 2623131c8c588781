"""``llm-mux ask`` end to end: the real executable against fake CLIs and a real HTTP server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, llm_mux_executable
from tests.fakes.fixtures import read_pid, wait_gone
from tests.fakes.server import FakeLLMServer, error, rate_limited

pytestmark = pytest.mark.usefixtures("fake_path")

KEY = "sk-planted-secret-123"
Cli = Callable[..., CliResult]
WriteConfig = Callable[..., Path]


@pytest.fixture
def ask(cli: Cli, write_config: WriteConfig) -> Callable[..., CliResult]:
    """Write ``config`` and run ``llm-mux ask ARGS --config FILE``."""

    def run(config: str, *args: str, **kwargs: Any) -> CliResult:
        path = write_config(config)
        return cli("ask", *args, "--config", str(path), **kwargs)

    return run


def http_config(server: FakeLLMServer) -> str:
    return f"""
[backends.openai]
command = "{server.url}/v1"
model = "gpt-fake"
api_key = "${{OPENAI_API_KEY}}"
max_retries = 1
retry_delay = 1

[backends.ollama]
type = "ollama"
command = "{server.url}"
model = "llama-fake"

[backends.anthropic]
type = "anthropic"
command = "{server.url}"
model = "claude-fake"
api_key = "${{OPENAI_API_KEY}}"
"""


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('command = "fake-echo"\nargs = ["-p"]', "-p hello there"),
        (
            'command = "claude"\nargs = ["-p", "--output-format", "json"]',
            "claude says: hello there",
        ),
        ('command = "codex"\nargs = ["exec", "--json"]', "codex says: hello there"),
        ('command = "gemini"\nargs = ["-o", "json"]', "gemini says: hello there"),
        ('type = "mock"\necho = true', "hello there"),
    ],
)
def test_cli_and_mock_backends(ask: Callable[..., CliResult], table: str, expected: str) -> None:
    result = ask(f"[backends.b]\n{table}\n", "b", "hello there")
    assert (result.exit_code, result.stdout) == (0, expected + "\n"), result.stderr
    assert "[done] b" in result.stderr


@pytest.mark.parametrize(
    ("backend", "path"),
    [("openai", "/v1/chat/completions"), ("ollama", "/api/chat"), ("anthropic", "/v1/messages")],
)
def test_http_backends(
    ask: Callable[..., CliResult], llm_server: FakeLLMServer, backend: str, path: str
) -> None:
    result = ask(http_config(llm_server), backend, "hi", env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("answers: hi\n")
    assert llm_server.requests[-1].path == path


def test_local_backend(ask: Callable[..., CliResult]) -> None:
    pytest.importorskip("xllamacpp")
    config = '[backends.tiny]\ntype = "local"\nmax_tokens = 8\ntimeout = 120\n'
    result = ask(config, "tiny", "Say hello.", "--output", "json", timeout=180)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["success"] and document["output"].strip()
    assert document["backends"]["tiny"]["usage"]["output_tokens"] > 0


PARALLEL = """
[backends.a]
type = "mock"
response = "answer A"
delay = 200

[backends.b]
type = "mock"
fail = "rate_limit"
max_retries = 0

[backends.c]
type = "mock"
response = "answer C"

[backends.off]
type = "mock"
enabled = false

[roles.multi]
backends = ["a", "b", "c", "off"]
execution = "parallel"
"""


def test_parallel_role_console(ask: Callable[..., CliResult]) -> None:
    result = ask(PARALLEL, "multi", "q")
    assert result.exit_code == 0
    assert result.stdout == "answer A\n\nanswer C\n"
    lines = result.stderr.splitlines()
    assert any(line.startswith("[done] a") for line in lines)
    assert any(line.startswith("[FAILED] b") and "RateLimited" in line for line in lines)
    # each backend is shown as it finishes: the fast ones before the slow one
    assert result.stderr.index("[done] c") < result.stderr.index("[done] a")
    assert "off" in result.stderr and "disabled" in result.stderr


def test_parallel_role_json(ask: Callable[..., CliResult]) -> None:
    result = ask(PARALLEL, "multi", "q", "--output", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["role"] == "multi" and document["execution"] == "parallel"
    assert document["success"] is True
    assert document["output"] == "answer A\n\nanswer C"
    backends = document["backends"]
    assert set(backends) == {"a", "b", "c", "off"}
    assert backends["a"]["ok"] and backends["a"]["output"] == "answer A"
    assert backends["a"]["duration_ms"] >= 200 and backends["a"]["usage"]["output_tokens"] == 2
    assert not backends["b"]["ok"] and backends["b"]["error"].startswith("RateLimited")
    assert backends["off"]["skipped"] is True


def test_quiet_prints_only_the_answer(ask: Callable[..., CliResult]) -> None:
    result = ask(PARALLEL, "multi", "q", "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "answer A\n\nanswer C\n", "")


def test_role_failure_exits_1_naming_each_backend(ask: Callable[..., CliResult]) -> None:
    config = PARALLEL + '\n[roles.all]\nbackends = ["a", "b", "c"]\nexecution = "parallel"\n'
    config += "min_success = 3\n"
    result = ask(config, "all", "q")
    assert result.exit_code == 1
    assert result.stdout == ""
    # b fails at once, so min_success = 3 is out of reach: the slow a is cancelled.
    assert "1 of 3 backends succeeded, 3 needed" in result.stderr
    assert "  - a: Failed: cancelled: min_success = 3 could no longer be reached" in result.stderr
    assert "  - b: RateLimited" in result.stderr
    assert "Traceback" not in result.stderr


def test_role_failure_in_json_mode_still_prints_the_document(
    ask: Callable[..., CliResult],
) -> None:
    config = PARALLEL + '\n[roles.fb]\nbackends = ["b", "off"]\nexecution = "fallback"\n'
    result = ask(config, "fb", "q", "-o", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["success"] is False
    assert document["backends"]["b"]["error"].startswith("RateLimited")
    assert "b: RateLimited" in result.stderr


def test_fallback_moves_on_after_a_rate_limit(
    ask: Callable[..., CliResult], llm_server: FakeLLMServer
) -> None:
    llm_server.script(rate_limited("1"), rate_limited("1"))
    config = http_config(llm_server) + (
        '[backends.spare]\ntype = "mock"\nresponse = "spare answer"\n'
        '[roles.fb]\nbackends = ["openai", "spare"]\nexecution = "fallback"\n'
    )
    result = ask(config, "fb", "q", env={"OPENAI_API_KEY": KEY})
    assert (result.exit_code, result.stdout) == (0, "spare answer\n")
    assert llm_server.count() == 2  # the first attempt and its one retry
    assert "[retry] openai" in result.stderr and "[FAILED] openai" in result.stderr


@pytest.mark.parametrize("dash", [True, False])
def test_prompt_from_stdin(ask: Callable[..., CliResult], dash: bool) -> None:
    config = '[backends.e]\ntype = "mock"\necho = true\n'
    args = ("e", "-") if dash else ("e",)
    result = ask(config, *args, input="piped prompt\n")
    assert (result.exit_code, result.stdout) == (0, "piped prompt\n")


def test_empty_prompt_is_a_usage_error(ask: Callable[..., CliResult]) -> None:
    result = ask('[backends.e]\ntype = "mock"\n', "e")
    assert result.exit_code == 2 and "no prompt" in result.stderr


def test_a_1mb_prompt_reaches_a_cli_backend(ask: Callable[..., CliResult]) -> None:
    result = ask(
        '[backends.i]\ncommand = "fake-argv-info"\nargs = ["-p"]\n', "i", input="x" * 1_000_000
    )
    assert result.exit_code == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["argv"] == ["-p"] and seen["stdin_bytes"] == 1_000_000


def test_unknown_target_suggests(ask: Callable[..., CliResult]) -> None:
    result = ask(PARALLEL, "mutli", "q")
    assert result.exit_code == 2
    assert "did you mean 'multi'" in result.stderr


TEAMS = """
[backends.general]
type = "mock"
response = "general answer"

[backends.rusty]
type = "mock"
response = "rust answer"

[roles.analyzer]
backends = ["general"]

[teams.rust]
detect = ["Cargo.toml"]

[teams.rust.roles.analyzer]
backends = ["rusty"]
"""


def test_team_detection_and_override(ask: Callable[..., CliResult], tmp_path: Path) -> None:
    (Path.cwd() / "Cargo.toml").write_text("[package]\n")
    result = ask(TEAMS, "analyzer", "q", "-o", "json")
    assert json.loads(result.stdout)["team"] == "rust"
    assert json.loads(result.stdout)["output"] == "rust answer"
    assert ask(TEAMS, "analyzer", "q", "--team", "none").stdout == "general answer\n"
    unknown = ask(TEAMS, "analyzer", "q", "--team", "rsut")
    assert unknown.exit_code == 2 and "did you mean 'rust'" in unknown.stderr


def test_keys_never_appear_in_any_output(
    ask: Callable[..., CliResult], llm_server: FakeLLMServer
) -> None:
    env = {"OPENAI_API_KEY": KEY}
    config = http_config(llm_server) + (
        '[backends.tool]\ncommand = "fake-echo"\nargs = ["--key", "${OPENAI_API_KEY}"]\n'
        '[roles.all]\nbackends = ["openai", "anthropic", "tool"]\nexecution = "parallel"\n'
    )
    runs = [ask(config, "all", "q", "--debug", env=env)]
    runs.append(ask(config, "all", "q", "--debug", "-o", "json", env=env))
    llm_server.require_key = "another-key"
    runs.append(ask(config, "openai", "q", "--debug", env=env))
    runs.append(ask(config, "all", "q", "--debug", "-o", "json", env=env))
    assert [r.exit_code for r in runs] == [0, 0, 1, 0]
    assert "Auth (HTTP 401)" in runs[2].stderr
    assert "POST" in runs[0].stderr  # the debug log ran
    for run in runs:
        assert KEY not in run.stdout and KEY not in run.stderr
    sent = {
        r.headers.get("Authorization") or r.headers.get("x-api-key") for r in llm_server.requests
    }
    assert sent == {f"Bearer {KEY}", KEY}  # the key did reach the server


def test_ctrl_c_stops_every_backend_process(write_config: WriteConfig, tmp_path: Path) -> None:
    pids = [tmp_path / "pid1", tmp_path / "pid2"]
    config = write_config(
        f'[backends.h1]\ncommand = "fake-hang"\nargs = ["{pids[0]}"]\n'
        f'[backends.h2]\ncommand = "fake-hang"\nargs = ["{pids[1]}", "stubborn"]\n'
        '[roles.both]\nbackends = ["h1", "h2"]\nexecution = "parallel"\n'
    )
    proc = subprocess.Popen(
        [llm_mux_executable(), "ask", "both", "q", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    found = [read_pid(p, within=10) for p in pids]
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 4
    assert all(wait_gone(pid) for pid in found)


def test_every_kind_reports_its_failure(
    ask: Callable[..., CliResult], llm_server: FakeLLMServer
) -> None:
    llm_server.script(error(500), error(500))
    config = http_config(llm_server) + (
        '[backends.gone]\ncommand = "no-such-cli-anywhere"\n'
        '[backends.crash]\ncommand = "fake-exit"\nargs = ["7"]\n'
        '[roles.fb]\nbackends = ["gone", "crash", "openai"]\nexecution = "fallback"\n'
    )
    result = ask(config, "fb", "q", env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 1
    assert "gone: Unavailable: command not found" in result.stderr
    assert "crash: Failed: exited with code 7" in result.stderr
    assert "openai: ServerError (HTTP 500)" in result.stderr
    assert "(after 2 attempts: ServerError 500, ServerError 500)" in result.stderr
