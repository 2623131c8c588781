"""What llama.cpp's own HTTP server (xllamacpp) really does, for the HTTP backends to rely on.

Plain httpx against a real server on 127.0.0.1: the OpenAI and Anthropic endpoints answer;
a wrong key is a 401; a prompt over the context is a 400; and after a streamed answer the
server closes the connection although it advertised keep-alive, so a pooled client that
reuses it fails with ``RemoteProtocolError`` unless the stream asked for ``Connection: close``.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlparse

import httpx2 as httpx
import pytest

from tests.fakes.llama_server import (  # noqa: F401  (fixtures)
    TEST_KEY,
    LlamaServer,
    llama_server_fixture,
    llama_server_with_key_fixture,
)
from tests.fakes.raw_http import chat_post

FRANCE = "What is the capital of France? Answer in one word."
SHORT = {"messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 3}


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "any", "messages": [{"role": "user", "content": prompt}], **extra}


async def test_openai_chat_completions_answers(llama_server: LlamaServer) -> None:
    async with httpx.AsyncClient(base_url=llama_server.openai_url, timeout=60) as client:
        response = await client.post("/chat/completions", json=chat(FRANCE, temperature=0))
    assert response.status_code == 200
    body = response.json()
    assert "Paris" in body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] > 0
    assert body["usage"]["completion_tokens"] > 0


async def test_models_lists_the_loaded_model(llama_server: LlamaServer) -> None:
    async with httpx.AsyncClient(base_url=llama_server.openai_url, timeout=60) as client:
        response = await client.get("/models")
    assert response.status_code == 200
    assert response.json()["data"][0]["id"].endswith(".gguf")


async def test_anthropic_messages_answers(llama_server_with_key: LlamaServer) -> None:
    headers = {"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"}
    body = chat(FRANCE, max_tokens=20, temperature=0)
    async with httpx.AsyncClient(base_url=llama_server_with_key.base_url, timeout=60) as client:
        response = await client.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["type"] == "message"
    assert answer["content"][0]["type"] == "text"
    assert "Paris" in answer["content"][0]["text"]
    assert answer["stop_reason"] == "end_turn"
    assert answer["usage"]["output_tokens"] > 0
    assert "input_tokens" in answer["usage"]  # excludes cached prompt tokens


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/chat/completions", {"Authorization": "Bearer wrong"}),
        ("/v1/chat/completions", {}),
        ("/v1/messages", {"x-api-key": "wrong"}),
        ("/v1/models", {"Authorization": "Bearer wrong"}),
    ],
)
async def test_wrong_or_missing_key_is_a_real_401(
    llama_server_with_key: LlamaServer, path: str, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=llama_server_with_key.base_url, timeout=60) as client:
        if path == "/v1/models":
            response = await client.get(path, headers=headers)
        else:
            response = await client.post(path, json=chat("hi", max_tokens=3), headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}
    }


async def test_right_key_as_bearer_is_accepted(llama_server_with_key: LlamaServer) -> None:
    headers = {"Authorization": f"Bearer {TEST_KEY}"}
    async with httpx.AsyncClient(base_url=llama_server_with_key.openai_url, timeout=60) as client:
        response = await client.post("/chat/completions", json={**SHORT}, headers=headers)
        health = await client.get(f"{llama_server_with_key.base_url}/health")
    assert response.status_code == 200
    assert health.status_code == 200  # /health needs no key


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_prompt_over_the_context_is_a_real_400(llama_server: LlamaServer, path: str) -> None:
    too_long = "hello world " * (llama_server.context * 2)
    async with httpx.AsyncClient(base_url=llama_server.base_url, timeout=60) as client:
        response = await client.post(path, json=chat(too_long, max_tokens=5))
    assert response.status_code == 400
    error = response.json()["error"]  # the same OpenAI-style body on the Anthropic path
    assert error["type"] == "exceed_context_size_error"
    assert error["code"] == 400
    assert error["n_ctx"] == llama_server.context
    assert "exceeds the available context size" in error["message"]
    assert response.headers["connection"] == "close"


def test_server_closes_the_connection_after_a_streamed_answer(
    llama_server: LlamaServer,
) -> None:
    url = urlparse(llama_server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(chat_post({**SHORT, "stream": True}))
        received = b""
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the last chunk of a chunked body
            received += sock.recv(65536)
        headers = received.split(b"\r\n\r\n", 1)[0].decode().lower()
        assert "keep-alive: timeout=5" in headers  # keep-alive advertised ...
        assert "connection: close" not in headers
        try:  # ... yet a request sent at once on the same connection gets no answer
            sock.sendall(chat_post(SHORT))
            assert sock.recv(65536) == b""
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_server_keeps_the_connection_after_a_plain_answer(llama_server: LlamaServer) -> None:
    url = urlparse(llama_server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        for _ in range(2):
            sock.sendall(chat_post(SHORT))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")


async def _reuse_after_stream(client: httpx.AsyncClient, path: str, close: bool) -> str:
    """Stream an answer, then post again: ``reused``, ``new connection`` or ``failed``."""
    headers = {"Connection": "close"} if close else {}
    async with client.stream("POST", path, json={**SHORT, "stream": True}, headers=headers) as r:
        async for _ in r.aiter_bytes():
            pass
    connected: list[str] = []

    async def trace(event: str, info: object) -> None:
        if event == "connection.connect_tcp.complete":
            connected.append(event)

    try:
        response = await client.post(path, json=SHORT, extensions={"trace": trace})
    except httpx.RemoteProtocolError as exc:
        assert "Server disconnected without sending a response" in str(exc)
        return "failed"
    assert response.status_code == 200
    return "new connection" if connected else "reused"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_pooled_connection_is_unusable_after_a_stream(
    llama_server: LlamaServer, path: str
) -> None:
    """httpx either notices the close (new connection) or loses the race (RemoteProtocolError)."""
    async with httpx.AsyncClient(base_url=llama_server.base_url, timeout=30) as client:
        outcomes = {await _reuse_after_stream(client, path, close=False) for _ in range(20)}
        assert "reused" not in outcomes
        retried = await client.post(path, json=SHORT)  # after a failure, a new connection works
    assert retried.status_code == 200


async def test_pooled_connection_is_reused_after_a_plain_answer(llama_server: LlamaServer) -> None:
    connected: list[str] = []

    async def trace(event: str, info: object) -> None:
        if event == "connection.connect_tcp.complete":
            connected.append(event)

    async with httpx.AsyncClient(base_url=llama_server.base_url, timeout=30) as client:
        for _ in range(3):
            response = await client.post(
                "/v1/chat/completions", json=SHORT, extensions={"trace": trace}
            )
            assert response.status_code == 200
    assert len(connected) == 1


async def test_connection_close_on_the_stream_avoids_the_fault(llama_server: LlamaServer) -> None:
    async with httpx.AsyncClient(base_url=llama_server.base_url, timeout=30) as client:
        outcomes = [
            await _reuse_after_stream(client, "/v1/chat/completions", close=True) for _ in range(20)
        ]
    assert set(outcomes) == {"new connection"}
