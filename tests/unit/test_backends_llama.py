"""The HTTP backends against a genuine server: llama.cpp serving SmolLM2 on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from llm_mux.backends.build import build_backend
from llm_mux.backends.http import HttpClientHolder
from llm_mux.errors import AuthError
from llm_mux.roles import Multiplexer, RoleFailed
from tests.fakes.fixtures import make_config
from tests.fakes.llama_server import (  # noqa: F401
    TEST_KEY,
    LlamaServer,
    llama_server_fixture,
    llama_server_with_key_fixture,
)


def table(server: LlamaServer, kind: str, **keys: Any) -> dict[str, Any]:
    command = server.openai_url if kind == "openai" else server.base_url
    return {"type": kind, "command": command, "model": "smollm2", "max_tokens": 8, **keys}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
async def test_answers_with_usage(llama_server: LlamaServer, kind: str, stream: bool) -> None:
    config = make_config({"b": table(llama_server, kind, stream=stream, temperature=0.0)})
    async with Multiplexer(config) as mux:
        result = await mux.call_backend("b", "Say hello.")
    assert result.output.strip()
    usage = result.outcomes[0].usage
    assert usage is not None and usage["input_tokens"] > 0 and 0 < usage["output_tokens"] <= 8


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_wrong_key_is_auth_and_not_retried(
    llama_server_with_key: LlamaServer, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_KEY", "not-the-key")
    keys = {"api_key": "${LLAMA_KEY}", "max_retries": 3}
    config = make_config({"b": table(llama_server_with_key, kind, **keys)})
    async with Multiplexer(config) as mux:
        with pytest.raises(RoleFailed) as caught:
            await mux.call_backend("b", "hi")
    outcome = caught.value.result.outcomes[0]
    assert isinstance(outcome.error, AuthError) and outcome.attempts == 1
    monkeypatch.setenv("LLAMA_KEY", TEST_KEY)
    async with Multiplexer(config) as mux:
        assert (await mux.call_backend("b", "hi")).ok


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_check(llama_server: LlamaServer, kind: str) -> None:
    backend = build_backend(
        "b", make_config({"b": table(llama_server, kind)}), client=HttpClientHolder()
    )
    assert "HTTP 200" in await backend.check()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_streams_then_more_calls_on_the_pooled_client_never_fail(
    llama_server: LlamaServer, kind: str
) -> None:
    """llama.cpp closes the connection after each stream; the next call must still answer."""
    streamed = table(llama_server, kind, stream=True, temperature=0.0, max_retries=1)
    plain = table(llama_server, kind, temperature=0.0, max_retries=1)
    config = make_config({"s": streamed, "p": plain})
    async with Multiplexer(config) as mux:
        for _ in range(4):
            for name in ("s", "s", "p"):
                result = await mux.call_backend(name, "Say hello.")
                assert result.ok and result.output.strip()


def test_a_dropped_connection_is_resent_at_once() -> None:
    from llm_mux.backends.retry import retry_wait
    from llm_mux.errors import ServerError

    dropped = ServerError("connection error", backend="b")
    dropped.dropped = True
    assert retry_wait(dropped, 1, 1000) == 0.0
    assert 0.0 <= retry_wait(dropped, 2, 1000) <= 2.0  # later retries back off as usual
