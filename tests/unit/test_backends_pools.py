"""Connections: kept alive per backend in the run's one client; proxies from the environment
keep httpx's own routing."""

from __future__ import annotations

import asyncio

import pytest

from llm_mux.backends import http
from llm_mux.roles import Multiplexer
from tests.fakes.fixtures import make_config
from tests.fakes.server import FakeLLMServer


def backend(server: FakeLLMServer) -> dict[str, str]:
    return {"command": f"{server.url}/v1", "model": "m"}


async def test_each_backend_keeps_its_own_connection(llm_server: FakeLLMServer) -> None:
    config = make_config({"a": backend(llm_server), "b": backend(llm_server)})
    async with Multiplexer(config) as mux:
        for _ in range(3):
            await mux.call_backend("a", "hi")
            await mux.call_backend("b", "hi")
    ports = {seen.client[1] for seen in llm_server.requests}
    assert len(llm_server.requests) == 6
    assert len(ports) == 2  # one kept-alive connection per backend, reused


async def test_a_burst_of_requests_keeps_every_connection_alive() -> None:
    """64 requests at once to one backend open 64 connections; all stay pooled, so the
    next burst opens none (a pool keeping only 20 would reconnect 44 times per burst)."""
    server = FakeLLMServer(delay=0.3).start()
    try:
        config = make_config({"a": backend(server)})
        async with Multiplexer(config) as mux:
            for _ in range(2):
                await asyncio.gather(*(mux.call_backend("a", "hi") for _ in range(64)))
    finally:
        server.stop()
    first = {seen.client[1] for seen in server.requests[:64]}
    second = {seen.client[1] for seen in server.requests[64:]}
    assert len(server.requests) == 128
    assert second <= first, f"{len(second - first)} new connections in the second burst"


async def test_environment_proxies_keep_the_plain_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    holder = http.HttpClientHolder()
    try:
        client = holder.get()
        assert type(client._transport).__name__ != "PoolPerBackend"
    finally:
        await holder.aclose()
    monkeypatch.delenv("HTTPS_PROXY")
    holder = http.HttpClientHolder()
    try:
        assert type(holder.get()._transport).__name__ == "PoolPerBackend"
    finally:
        await holder.aclose()
