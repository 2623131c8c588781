"""HTTP throughput: 1,000 requests at concurrency 100 to an instant local server.

The floor is raw httpx2 (one pooled AsyncClient, the same body, JSON decoded) measured in the
same run against the same server. Prints requests per second of each and the ratio of wall
times, llm-mux backend layer / raw (target: at most 1.3).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2 as httpx
from tests.fakes.fixtures import make_config
from tests.fakes.server import in_subprocess

from llm_mux.roles import Multiplexer

REQUESTS = 1000
CONCURRENCY = 100
RUNS = 5


async def raw(url: str) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient() as client:  # default pool limits, as llm-mux uses

        async def one(i: int) -> str:
            body = {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}
            async with gate:
                response = await client.post(f"{url}/v1/chat/completions", json=body)
            return str(response.json()["choices"][0]["message"]["content"])

        await asyncio.gather(*(one(i) for i in range(CONCURRENCY)))  # warm the pool
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        return time.perf_counter() - start


async def mux(url: str) -> float:
    backend = {"command": f"{url}/v1", "model": "m", "max_concurrent": CONCURRENCY}
    async with Multiplexer(make_config({"b": backend})) as mx:

        async def one(i: int) -> str:
            return (await mx.call_backend("b", f"q{i}")).output

        await asyncio.gather(*(one(i) for i in range(CONCURRENCY)))
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        return time.perf_counter() - start


def main() -> None:
    floors, walls = [], []
    with in_subprocess(0.0, lean=True) as url:
        for _ in range(RUNS):  # interleaved, so load from elsewhere hits both alike
            floors.append(asyncio.run(raw(url)))
            walls.append(asyncio.run(mux(url)))
    floor, ours = statistics.median(floors), statistics.median(walls)
    print(f"{REQUESTS} requests at concurrency {CONCURRENCY} to an instant local server")
    print(f"raw httpx2 (floor) : {floor * 1000:7.1f} ms  {REQUESTS / floor:7.0f} req/s")
    print(
        f"llm-mux backends   : {ours * 1000:7.1f} ms  {REQUESTS / ours:7.0f} req/s  "
        f"ratio {ours / floor:.2f}x (target <= 1.3)"
    )


if __name__ == "__main__":
    main()
