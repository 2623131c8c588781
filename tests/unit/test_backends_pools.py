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


async def post_through_the_pools(
    holder: http.HttpClientHolder, url: str, backend: str = "a"
) -> int:
    """One POST through the pooled httpx2 client (the path of https backends), as a
    backend's request, with its answer read and closed; its status, or -1 when refused."""
    import httpx2 as httpx

    client = holder.get()
    request = client.build_request(
        "POST", url, json={"model": "m", "messages": []}, extensions={http.POOL: backend}
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.ConnectError:
        return -1
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response.status_code


async def test_a_burst_of_requests_keeps_every_connection_alive() -> None:
    """64 requests at once to one backend open 64 connections; all stay pooled, so the
    next burst opens none (a pool keeping only 20 would reconnect 44 times per burst).
    They are spread over small pools, so that no pool rescans 64 connections per request."""
    server = FakeLLMServer(delay=1.0).start()
    holder = http.HttpClientHolder()
    try:
        url = f"{server.url}/v1/chat/completions"
        for _ in range(2):
            statuses = await asyncio.gather(
                *(post_through_the_pools(holder, url) for _ in range(64))
            )
            assert statuses == [200] * 64
        shards = holder.get()._transport._shards[("a", "http")]  # type: ignore[attr-defined]
        sizes = [len(shard.pool._pool.connections) for shard in shards]
        assert all(shard.in_flight == 0 for shard in shards)  # every answer closed
    finally:
        await holder.aclose()
        server.stop()
    assert sum(sizes) == 64 and max(sizes) <= http.SHARD, sizes
    first = {seen.client[1] for seen in server.requests[:64]}
    second = {seen.client[1] for seen in server.requests[64:]}
    assert len(server.requests) == 128
    assert second <= first, f"{len(second - first)} new connections in the second burst"


async def test_requests_one_at_a_time_reuse_one_connection(llm_server: FakeLLMServer) -> None:
    holder = http.HttpClientHolder()
    try:
        for _ in range(2 * http.SHARD):
            assert (
                await post_through_the_pools(holder, f"{llm_server.url}/v1/chat/completions") == 200
            )
        shards = holder.get()._transport._shards[("a", "http")]  # type: ignore[attr-defined]
    finally:
        await holder.aclose()
    assert len(shards) == 1 and shards[0].in_flight == 0
    assert len({seen.client[1] for seen in llm_server.requests}) == 1


async def test_failed_requests_give_their_place_back() -> None:
    """Refused connections leave no request counted in flight, so later calls one at a
    time still go to the first pool."""
    holder = http.HttpClientHolder()
    try:
        for _ in range(3 * http.SHARD):
            assert await post_through_the_pools(holder, "http://127.0.0.1:1/v1/x", "down") == -1
        shards = holder.get()._transport._shards[("down", "http")]  # type: ignore[attr-defined]
    finally:
        await holder.aclose()
    assert len(shards) == 1 and shards[0].in_flight == 0


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
