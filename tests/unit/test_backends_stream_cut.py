"""A stream that ends without its end marker was cut: a ServerError, retried, never an answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_mux.backends.base import Request
from llm_mux.backends.build import build_backend
from llm_mux.backends.http import HttpClientHolder
from llm_mux.errors import ParseError, ServerError
from llm_mux.roles import Multiplexer, RoleFailed
from tests.fakes.fixtures import make_config
from tests.fakes.server import FakeLLMServer, Reply, answer, cut

KINDS = ["openai", "anthropic", "ollama"]
MARKERS = {"openai": "[DONE]", "anthropic": "message_stop", "ollama": 'a chunk with "done": true'}


def streaming(kind: str, server: FakeLLMServer, **extra: Any) -> dict[str, Any]:
    base = f"{server.url}/v1" if kind == "openai" else server.url
    return {"type": kind, "command": base, "model": "m", "stream": True, "retry_delay": 1, **extra}


async def ask(backend: dict[str, Any]) -> str:
    async with Multiplexer(make_config({"b": backend})) as mux:
        return (await mux.call_backend("b", "prompt")).output


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cut_stream_is_retried(kind: str, llm_server: FakeLLMServer) -> None:
    llm_server.script(cut("half an"), answer("the whole answer"))
    assert await ask(streaming(kind, llm_server, max_retries=1)) == "the whole answer"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_a_cut_stream_without_retries_fails(kind: str, llm_server: FakeLLMServer) -> None:
    llm_server.script(cut("half an"))
    with pytest.raises(RoleFailed) as caught:
        await ask(streaming(kind, llm_server, max_retries=0))
    error = caught.value.failures["b"]
    assert isinstance(error, ServerError)
    assert f"ended before {MARKERS[kind]}" in error.message


def sse(*chunks: Any) -> Reply:
    data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks).encode()
    return Reply(body=data, content_type="text/event-stream")


async def test_an_openai_stream_ending_with_a_finish_reason_is_whole(
    llm_server: FakeLLMServer,
) -> None:
    llm_server.script(
        sse(
            {"choices": [{"index": 0, "delta": {"content": "all "}}]},
            {"choices": [{"index": 0, "delta": {"content": "here"}, "finish_reason": "stop"}]},
        )
    )
    assert await ask(streaming("openai", llm_server, max_retries=0)) == "all here"


async def test_an_openai_stream_of_chunks_without_an_end_is_cut(
    llm_server: FakeLLMServer,
) -> None:
    llm_server.script(sse({"choices": [{"index": 0, "delta": {"content": "half"}}]}))
    with pytest.raises(RoleFailed, match="ServerError"):
        await ask(streaming("openai", llm_server, max_retries=0))


def garbled(kind: str) -> Reply:
    if kind == "ollama":
        return Reply(body=b"{not json\n", content_type="application/x-ndjson")
    return Reply(body=b"data: {not json\n\n", content_type="text/event-stream")


@pytest.mark.parametrize("kind", KINDS)
async def test_a_garbled_stream_is_a_parse_error_read_whole_or_piece_by_piece(
    kind: str, llm_server: FakeLLMServer
) -> None:
    llm_server.script(garbled(kind), garbled(kind))
    with pytest.raises(RoleFailed) as caught:
        await ask(streaming(kind, llm_server, max_retries=0))
    whole = caught.value.failures["b"]
    config = make_config({"b": streaming(kind, llm_server)})
    client = HttpClientHolder()
    backend = build_backend("b", config, client=client)
    try:
        with pytest.raises(ParseError) as streamed:
            async for _ in backend.stream(Request("prompt")):
                pass
    finally:
        await client.aclose()
    for error in (whole, streamed.value):
        assert isinstance(error, ParseError)
        assert f"malformed stream from {llm_server.url}" in error.message
    assert len(llm_server.requests) == 2
