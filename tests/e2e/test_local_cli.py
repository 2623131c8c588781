"""``local`` backends through the real ``llm-mux`` executable, with the real SmolLM2-135M model."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import llm_mux_executable, slack, within

pytest.importorskip("xllamacpp")

FRANCE = "What is the capital of France? Answer in one word."
STORY = "Write a very long story about a dragon."
CONFIG = """
[backends.tiny]
type = "local"

[backends.story]
type = "local"
max_tokens = 4000

[backends.impatient]
type = "local"
max_tokens = 4000
timeout = 1

[backends.nofile]
type = "local"
model = "models/none.gguf"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "local.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_ask_answers_from_the_local_model(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--config", str(config), "ask", "tiny", FRANCE)
    assert result.exit_code == 0, result.stderr
    assert "Paris" in result.stdout


def test_ask_json_records_token_usage(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--config", str(config), "--output", "json", "ask", "tiny", FRANCE)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert "Paris" in document["output"]
    assert document["usage"]["input_tokens"] > 0
    assert document["usage"]["output_tokens"] > 0


def test_timeout_ends_the_run_promptly(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = cli("--config", str(config), "ask", "impatient", STORY, timeout=30)
    assert (
        time.monotonic() - started < 10 * slack()
    )  # 1 s timeout + start-up + loading, not 4000 tokens
    assert result.exit_code == 1
    assert "Timeout" in result.stderr


def test_missing_model_file_is_a_clear_error(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--config", str(config), "ask", "nofile", FRANCE)
    assert result.exit_code == 1
    assert "model file not found" in result.stderr
    assert str(Path.cwd() / "models" / "none.gguf") in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_a_generation_within_two_seconds(config: Path) -> None:
    argv = [llm_mux_executable(), "--config", str(config), "ask", "story", STORY]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # loaded and generating (the story goes on for minutes)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=30 * slack())
    assert time.monotonic() - sent < within(2.0)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_ctrl_c_while_a_long_prompt_is_processed_exits_cleanly(config: Path) -> None:
    """Exiting while llama.cpp computes would crash (SIGSEGV): the prompt phase is stopped too."""
    prompt = "Count the words. " + "hello world, this is a test. " * 350  # ~10 s of prompt here
    argv = [llm_mux_executable(), "--config", str(config), "ask", "story"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    proc.stdin.write(prompt)
    proc.stdin.close()
    time.sleep(3)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    proc.wait(timeout=30 * slack())
    # the current 128-token prompt step plus llama.cpp's 1 s disconnect poll: ~1 s, 2 s loaded
    assert time.monotonic() - sent < within(2.0)
    assert proc.returncode == 130


def test_doctor_reports_the_model_file_and_that_it_loads(cli, config: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("--config", str(config), "--output", "json", "doctor")
    report = json.loads(result.stdout)["backends"]
    assert report["tiny"]["available"] is True
    assert "SmolLM2-135M-Instruct" in report["tiny"]["detail"]
    assert ".gguf" in report["tiny"]["detail"]
    assert "loaded in" in report["tiny"]["detail"]
    assert report["nofile"]["available"] is False
    assert "none.gguf" in report["nofile"]["detail"]
    assert result.exit_code == 1  # nofile is enabled and unavailable
