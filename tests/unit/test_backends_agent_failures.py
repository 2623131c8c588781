"""What real agent CLIs print when they fail, replayed from recordings, and how it is classed.

Each scenario in ``tests/fakes/recorded`` is what the real CLI printed (see ``replay.py``).
The error must carry the class the CLI's JSON or wording says, the CLI's message and never
its raw JSON; CLIs stuck in their own retry loops must be stopped as soon as their event
stream says why, with their last lines quoted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from llm_mux.backends.base import Request
from llm_mux.backends.build import build_backend
from llm_mux.backends.cli import CliBackend
from llm_mux.backends.cli_output import parse_output
from llm_mux.backends.http import HttpClientHolder
from llm_mux.backends.retry import is_retryable
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    BadRequest,
    RateLimited,
    ServerError,
    Unavailable,
)
from tests.fakes.fixtures import make_config, read_pid, wait_gone

pytestmark = pytest.mark.usefixtures("fake_path")

CLAUDE_JSON = ["-p", "--output-format", "json"]
CLAUDE_STREAM = ["-p", "--output-format", "stream-json", "--verbose"]
CODEX_JSON = ["exec", "--json", "--skip-git-repo-check"]
GEMINI_JSON = ["-o", "json", "-p"]


def replay(scenario: str, args: list[str], **keys: Any) -> CliBackend:
    config = make_config({"b": {"command": "fake-replay", "args": [scenario, *args], **keys}})
    built = build_backend("b", config, client=HttpClientHolder())
    assert isinstance(built, CliBackend)
    return built


async def failure(scenario: str, args: list[str], **keys: Any) -> BackendError:
    with pytest.raises(BackendError) as info:
        await replay(scenario, args, **keys).complete(Request("hi"))
    return info.value


@pytest.mark.parametrize(
    ("scenario", "args", "cls", "status", "words"),
    [
        ("claude-not-logged-in", CLAUDE_JSON, AuthError, None, "Not logged in · Please run /login"),
        ("claude-not-logged-in-text", ["-p"], AuthError, None, "Not logged in"),
        ("claude-prompt-too-long", CLAUDE_JSON, BadRequest, 400, "Prompt is too long"),
        ("gemini-no-auth-json", GEMINI_JSON, AuthError, None, "Please set an Auth method"),
        ("gemini-no-auth", ["-p"], AuthError, None, "Please set an Auth method"),
        ("llm-no-key", [], AuthError, None, "No key found"),
    ],
)
async def test_recorded_failures_are_classed_and_shown_as_text(
    scenario: str, args: list[str], cls: type[BackendError], status: int | None, words: str
) -> None:
    error = await failure(scenario, args)
    assert type(error) is cls, error.message
    assert error.status == status
    assert words in error.message
    assert '{"' not in error.message and '"message":' not in error.message  # never raw JSON
    assert not is_retryable(error, replay(scenario, args).cfg)


async def test_a_stuck_claude_with_a_refused_key_fails_early_as_auth(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    error = await failure(
        "claude-stream-401", CLAUDE_STREAM, timeout=60, env={"REPLAY_PID_FILE": str(pid_file)}
    )
    assert time.monotonic() - started < 30  # not the 60 s timeout
    assert isinstance(error, AuthError) and error.status == 401
    assert "retrying after HTTP 401 authentication_failed (attempt 1/10)" in error.message
    assert wait_gone(read_pid(pid_file))


async def test_a_stuck_codex_offline_fails_early_as_unavailable() -> None:
    started = time.monotonic()
    error = await failure("codex-offline", CODEX_JSON, timeout=60)
    assert time.monotonic() - started < 30
    assert isinstance(error, Unavailable) and not error.not_found
    assert error.message.count("Reconnecting... waiting for network") == 1
    assert "Reconnecting... 5/5" in error.message  # the tail before it
    assert "thread.started" not in error.message


async def test_an_overloaded_claude_is_left_to_retry_and_its_tail_ends_the_timeout() -> None:
    error = await failure("claude-stream-529", CLAUDE_STREAM, timeout=8)  # lines come in 0.1 s
    assert isinstance(error, BackendTimeout)
    assert error.message.count("retrying after HTTP 529 overloaded") == 3
    assert "last output:" in error.message and "{" not in error.message


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequest), (401, AuthError), (403, AuthError), (429, RateLimited),
     (500, ServerError), (529, ServerError), (404, BadRequest)],
)  # fmt: skip
async def test_claude_api_error_status_decides_the_class(
    tmp_path: Path, status: int, cls: type[BackendError]
) -> None:
    script = tmp_path / "claude-status"
    document = (
        f'{{"type":"result","subtype":"success","is_error":true,"api_error_status":{status},'
        f'"result":"API Error: {status} {{\\"type\\":\\"error\\"}}","usage":{{}}}}'
    )
    script.write_text(f"#!/bin/sh\necho '{document}'\nexit 1\n")
    script.chmod(0o755)
    config = make_config({"b": {"command": str(script), "args": CLAUDE_JSON, "max_retries": 0}})
    built = build_backend("b", config, client=HttpClientHolder())
    with pytest.raises(BackendError) as info:
        await built.complete(Request("hi"))
    assert type(info.value) is cls and info.value.status == status
    assert f"(HTTP {status}): API Error: {status}" in info.value.message


async def test_a_text_cli_that_hangs_times_out_quoting_its_last_lines(tmp_path: Path) -> None:
    script = tmp_path / "stuck"
    lines = "".join(f"echo 'retry {i}: connection refused' >&2\n" for i in range(1, 15))
    script.write_text(f"#!/bin/sh\necho 'partial answer'\n{lines}exec sleep 300\n")
    script.chmod(0o755)
    config = make_config({"b": {"command": str(script), "timeout": 4}})
    built = build_backend("b", config, client=HttpClientHolder())
    with pytest.raises(BackendTimeout) as info:
        await built.complete(Request("hi"))
    message = info.value.message
    assert "no answer within 4 s" in message and "last output:" in message
    assert "retry 14: connection refused" in message and "retry 1:" not in message


@pytest.mark.parametrize(
    ("stdout", "status", "message"),
    [
        (
            '{"type":"result","is_error":true,"api_error_status":null,'
            '"result":"API Error: 529 overloaded"}',
            529,
            "API Error: 529 overloaded",
        ),
        (
            '{"type":"turn.started"}\n{"type":"turn.failed","error":{"message":'
            '"unexpected status 401 Unauthorized: Missing bearer authentication"}}',
            401,
            "unexpected status 401 Unauthorized: Missing bearer authentication",
        ),
        ('{"type":"error","message":"quota exceeded"}', None, "quota exceeded"),
    ],
)
def test_json_failures_give_their_message_and_status(
    stdout: str, status: int | None, message: str
) -> None:
    parsed = parse_output(stdout, json_mode=True)
    assert (parsed.error, parsed.status) == (message, status)


@pytest.mark.parametrize(("code", "cls"), [(41, AuthError), (42, BadRequest)])
async def test_gemini_exit_codes_class_its_json_errors(
    tmp_path: Path, code: int, cls: type[BackendError]
) -> None:
    script = tmp_path / "gemini"
    error = f'{{"error": {{"type": "Error", "message": "Failed to sign in.", "code": {code}}}}}'
    script.write_text(f"#!/bin/sh\necho '{error}' >&2\nexit {code}\n")
    script.chmod(0o755)
    config = make_config({"b": {"command": str(script), "args": GEMINI_JSON}})
    built = build_backend("b", config, client=HttpClientHolder())
    with pytest.raises(BackendError) as info:
        await built.complete(Request("hi"))
    assert type(info.value) is cls and info.value.status is None
    assert f"Failed to sign in. (exited with code {code})" in info.value.message
