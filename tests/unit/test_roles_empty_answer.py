"""An empty or whitespace-only answer is a failure for every backend type, so a fallback
role moves on instead of succeeding with nothing."""

from __future__ import annotations

from typing import Any

import pytest

from llm_mux.backends import mock
from llm_mux.errors import Failed
from llm_mux.roles import Multiplexer, RoleFailed
from tests.fakes.fixtures import make_config
from tests.fakes.server import FakeLLMServer, answer

BLANKS = ["", "  \n\t\n"]


@pytest.fixture(autouse=True)
def _fresh_mock_counts() -> None:
    mock.reset_counts()


def blank_backend(kind: str, text: str, server: FakeLLMServer) -> dict[str, Any]:
    """A backend of ``kind`` whose answer is ``text``."""
    if kind == "mock":
        return {"type": "mock", "response": text}
    if kind == "cli":
        return {"command": "/bin/sh", "args": ["-c", 'printf "%s" "$1"', "sh", text]}
    http, stream = kind.split("-") if "-" in kind else (kind, "")
    model = f"{kind}-model"
    server.script(answer(text), model=model)
    base = f"{server.url}/v1" if http == "openai" else server.url
    return {"type": http, "command": base, "model": model, "stream": stream == "stream"}


KINDS = [
    "mock",
    "cli",
    "openai",
    "openai-stream",
    "anthropic",
    "anthropic-stream",
    "ollama",
    "ollama-stream",
]


@pytest.mark.parametrize("text", BLANKS, ids=["empty", "whitespace"])
@pytest.mark.parametrize("kind", KINDS)
async def test_fallback_moves_on_from_an_empty_answer(
    kind: str, text: str, llm_server: FakeLLMServer
) -> None:
    backends = {"blank": blank_backend(kind, text, llm_server)}
    backends["good"] = {"type": "mock", "response": "a real answer"}
    config = make_config(backends, {"r": {"backends": ["blank", "good"], "execution": "fallback"}})
    async with Multiplexer(config) as mux:
        result = await mux.call_role("r", "prompt")
    assert (result.output, result.backend) == ("a real answer", "good")
    blank = result.outcomes[0]
    assert isinstance(blank.error, Failed)
    assert "empty answer" in (blank.error_text or "")
    assert blank.attempts == 1  # not retried: the same backend would answer the same


async def test_an_empty_answer_fails_a_first_role_and_counts_against_min_success(
    llm_server: FakeLLMServer,
) -> None:
    backends = {"blank": blank_backend("cli", "\n", llm_server)}
    backends["good"] = {"type": "mock", "response": "fine"}
    roles = {
        "one": {"backends": ["blank"]},
        "both": {"backends": ["blank", "good"], "execution": "parallel", "min_success": 2},
    }
    config = make_config(backends, roles)
    async with Multiplexer(config) as mux:
        for role in roles:
            with pytest.raises(RoleFailed) as caught:
                await mux.call_role(role, "prompt")
            assert "blank: Failed: empty answer" in caught.value.message


async def test_an_answer_with_text_around_whitespace_is_kept(llm_server: FakeLLMServer) -> None:
    config = make_config({"cli": blank_backend("cli", "  ok  \n", llm_server)})
    async with Multiplexer(config) as mux:
        result = await mux.call_backend("cli", "prompt")
    assert result.output.strip() == "ok"
