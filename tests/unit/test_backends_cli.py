"""CLI backends against real fake executables: argv, stdin, env, limits, failures, kills."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from llm_mux.backends.base import Request
from llm_mux.backends.build import build_backend
from llm_mux.backends.cli import ARG_LIMIT, CliBackend
from llm_mux.backends.http import HttpClientHolder
from llm_mux.errors import (
    AuthError,
    BackendTimeout,
    BadRequest,
    ConfigError,
    Failed,
    RateLimited,
    Unavailable,
)
from llm_mux.secrets import registered
from tests.fakes.fixtures import make_config, read_pid, wait_gone

pytestmark = pytest.mark.usefixtures("fake_path")


def backend(defaults: dict[str, Any] | None = None, **keys: Any) -> CliBackend:
    config = make_config({"b": keys}, defaults=defaults)
    built = build_backend("b", config, client=HttpClientHolder())
    assert isinstance(built, CliBackend)
    return built


async def ask(prompt: str = "hello", *, cwd: Path | None = None, **keys: Any) -> str:
    defaults = keys.pop("defaults", None)
    response = await backend(defaults, **keys).complete(Request(prompt, cwd=cwd))
    return response.text


async def info(prompt: str = "hello", **keys: Any) -> dict[str, Any]:
    return json.loads(await ask(prompt, command="fake-argv-info", **keys))  # type: ignore[no-any-return]


async def test_answer_is_stdout_of_command_args_prompt() -> None:
    assert await ask("the prompt", command="fake-echo", args=["-p"]) == "-p the prompt"


async def test_prompt_is_one_argument_never_seen_by_a_shell(tmp_path: Path) -> None:
    prompt = f"$(touch {tmp_path}/pwned) `id` 'single' \"double\" ; | & \n second line"
    seen = await info(prompt, args=["--flag"])
    assert seen["argv"] == ["--flag", prompt]
    assert seen["stdin_bytes"] == 0
    assert not (tmp_path / "pwned").exists()


async def test_prompt_via_stdin() -> None:
    seen = await info("on stdin", args=["-x"], prompt_via="stdin")
    assert seen["argv"] == ["-x"]
    assert (seen["stdin_bytes"], seen["stdin_head"]) == (8, "on stdin")
    assert await ask("piped", command="fake-cat", prompt_via="stdin") == "stdin: piped"


async def test_a_1mb_prompt_goes_to_stdin_automatically() -> None:
    prompt = "x" * 1_000_000
    seen = await info(prompt, args=["-p"])
    assert seen["argv"] == ["-p"]
    assert seen["stdin_bytes"] == 1_000_000


async def test_the_limit_counts_utf8_bytes() -> None:
    at_limit = await info("a" * ARG_LIMIT)
    assert at_limit["arg_bytes"] == [ARG_LIMIT] and at_limit["stdin_bytes"] == 0
    wide = "é" * (ARG_LIMIT // 2 + 1)  # fewer characters than the limit, more bytes
    seen = await info(wide)
    assert seen["argv"] == [] and seen["stdin_bytes"] == len(wide.encode())


async def test_without_stdin_fallback_a_large_prompt_is_a_clear_error() -> None:
    with pytest.raises(BadRequest, match="100 KiB") as caught:
        await info("x" * 200_000, stdin_fallback=False)
    assert "stdin" in str(caught.value)


@pytest.mark.parametrize("keys", [{}, {"prompt_via": "stdin"}])
async def test_nul_byte_in_prompt_is_a_clear_error(keys: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="NUL byte"):
        await info("before\0after", **keys)


async def test_nul_byte_in_args_is_a_clear_error() -> None:
    with pytest.raises(BadRequest, match="args contains a NUL byte"):
        await info("p", args=["a\0b"])


async def test_cwd_is_the_requested_directory(tmp_path: Path) -> None:
    response = await backend(command="fake-argv-info").complete(Request("p", cwd=tmp_path))
    assert json.loads(response.text)["cwd"] == str(tmp_path)


async def test_environment_drops_claudecode_and_adds_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDECODE", "1")
    monkeypatch.setenv("FAKE_INHERITED", "yes")
    monkeypatch.setenv("TOKEN_SOURCE", "tok-value-123")
    seen = await info(env={"FAKE_SET": "${TOKEN_SOURCE}", "FAKE_DOLLAR": "a$$b"})
    assert seen["claudecode"] is None
    assert seen["env"] == {
        "FAKE_INHERITED": "yes",
        "FAKE_SET": "tok-value-123",
        "FAKE_DOLLAR": "a$b",
    }
    assert "tok-value-123" in registered()


async def test_args_expand_variables_as_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARG_SECRET", "arg-secret-456")
    assert (await info(args=["--key", "${ARG_SECRET}"]))["argv"][1] == "arg-secret-456"
    assert "arg-secret-456" in registered()


async def test_missing_variable_names_it_and_the_backend() -> None:
    with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE") as caught:
        await info(args=["${NOT_SET_ANYWHERE}"])
    assert "backend 'b'" in str(caught.value)


async def test_command_wrapper_passes_the_command_as_one_argument(tmp_path: Path) -> None:
    prompt = f'$(touch {tmp_path}/pwned) it\'s "quoted" $HOME'
    seen = await info(prompt, args=["a b"], defaults={"command_wrapper": "sh -c"})
    assert seen["argv"] == ["a b", prompt]
    assert not (tmp_path / "pwned").exists()


async def test_command_wrapper_with_a_large_prompt_uses_stdin() -> None:
    seen = await info("y" * 300_000, defaults={"command_wrapper": "sh -c"})
    assert seen["argv"] == [] and seen["stdin_bytes"] == 300_000


async def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(BackendTimeout, match="1 s"):
        await ask(command="fake-hang", args=[str(pidfile)], timeout=1)
    assert time.monotonic() - started < 4
    assert wait_gone(read_pid(pidfile))


async def test_timeout_kills_a_grandchild_that_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with pytest.raises(BackendTimeout):
        await ask(command="fake-hang", args=[str(pidfile), "stubborn"], timeout=1)
    assert wait_gone(read_pid(pidfile))


async def test_cancellation_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = asyncio.ensure_future(ask(command="fake-hang", args=[str(pidfile)]))
    pid = await asyncio.to_thread(read_pid, pidfile)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_gone(pid)


async def test_nonzero_exit_is_failed_with_code_and_stderr_tail() -> None:
    with pytest.raises(Failed) as caught:
        await ask(command="fake-exit", args=["3"])
    message = str(caught.value)
    assert "backend 'b'" in message and "exited with code 3" in message
    assert "something broke" in message


async def test_killed_by_a_signal_is_named() -> None:
    with pytest.raises(Failed, match="killed by signal SIGKILL"):
        await ask(command="sh", args=["-c", "kill -9 $$$$", "sh"])


@pytest.mark.parametrize("stream", ["stderr", "stdout"])
async def test_rate_limit_wording_with_nonzero_exit(stream: str) -> None:
    with pytest.raises(RateLimited) as caught:
        await ask(command="fake-say", args=["5-hour limit reached · resets 1am", stream, "1"])
    assert "limit reached" in str(caught.value)
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 86400


async def test_rate_limit_wording_in_an_answer_is_an_answer() -> None:
    text = "HTTP 429 means too many requests"
    assert await ask(command="fake-say", args=[text, "stdout", "0"]) == text


async def test_auth_wording_is_auth_error() -> None:
    with pytest.raises(AuthError, match="Invalid API key"):
        await ask(command="fake-say", args=["Invalid API key", "stderr", "1"])


async def test_command_not_found_is_unavailable() -> None:
    with pytest.raises(Unavailable) as caught:
        await ask(command="no-such-command-anywhere")
    assert caught.value.not_found


async def test_non_executable_file_is_unavailable(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(Unavailable) as caught:
        await ask(command=str(script))
    assert caught.value.not_found


async def test_invalid_utf8_is_replaced() -> None:
    assert await ask(command="fake-invalid-utf8") == "café \ufffd\ufffd ok"


async def test_output_over_the_cap_fails_naming_it() -> None:
    with pytest.raises(Failed, match="max_output_mb") as caught:
        await ask(command="fake-big", args=["3000000"], defaults={"max_output_mb": 1})
    assert "1 MiB" in str(caught.value)


async def test_claude_json_output_is_parsed() -> None:
    response = await backend(command="claude", args=["-p", "--output-format", "json"]).complete(
        Request("hi")
    )
    assert response.text == "claude says: hi"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (115, 20)
    assert response.usage.cost_usd == 0.0123


async def test_claude_usage_limit_in_json_is_rate_limited() -> None:
    args = ["-p", "--output-format", "json", "--fake-fail", "limit"]
    with pytest.raises(RateLimited, match="resets 1am") as caught:
        await ask(command="claude", args=args)
    assert caught.value.retry_after is not None


async def test_codex_json_stream_gives_the_final_message() -> None:
    response = await backend(command="codex", args=["exec", "--json"]).complete(Request("q"))
    assert response.text == "codex says: q"
    assert response.usage is not None and response.usage.total_tokens == 150
    old = await ask("q", command="codex", args=["exec", "--json", "--old-format"])
    assert old == "codex says: q"


async def test_codex_failed_turn_is_an_error() -> None:
    with pytest.raises(Failed, match="stream disconnected"):
        await ask(command="codex", args=["exec", "--json", "--fake-fail"])


async def test_gemini_json_output_is_parsed() -> None:
    response = await backend(command="gemini", args=["-o", "json"]).complete(Request("g"))
    assert response.text == "gemini says: g"
    assert response.usage is not None and response.usage.input_tokens == 11


async def test_plain_output_stays_raw_text() -> None:
    assert await ask("hi", command="claude", args=["-p"]) == "claude says: hi"


async def test_check_resolves_the_command_on_path(fake_path: Path) -> None:
    assert str(fake_path) in await backend(command="fake-echo").check()
    with pytest.raises(Unavailable) as caught:
        await backend(command="no-such-command-anywhere").check()
    assert caught.value.not_found


async def test_check_with_a_wrapper_resolves_the_wrapper() -> None:
    wrapped = backend(defaults={"command_wrapper": "sh -c"}, command="only-inside-the-wrapper")
    assert "sh" in await wrapped.check()
    missing = backend(defaults={"command_wrapper": "no-such-wrapper --run"}, command="fake-echo")
    with pytest.raises(Unavailable, match="no-such-wrapper"):
        await missing.check()


async def test_check_names_a_missing_variable() -> None:
    with pytest.raises(ConfigError, match="MISSING_TOOL_PATH"):
        await backend(command="${MISSING_TOOL_PATH}/tool").check()
