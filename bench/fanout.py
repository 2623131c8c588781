"""Parallel fan-out: one prompt to K HTTP backends that each answer after 200 ms.

The floor is the server's 200 ms (and, measured in the same run, raw httpx2 sending the K
requests at once). Prints the median wall time per K and the ratio wall / 200 ms
(target: at most 1.1 at K = 64).
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

DELAY = 0.2
RUNS = 5
KS = (1, 8, 64)


async def mux_fanout(url: str, k: int) -> list[float]:
    backends = {f"b{i}": {"command": f"{url}/v1", "model": f"m{i}"} for i in range(k)}
    config = make_config(backends, {"all": {"backends": list(backends), "execution": "parallel"}})
    times = []
    async with Multiplexer(config) as mux:
        for _ in range(RUNS + 1):  # the first run opens the connections
            start = time.perf_counter()
            result = await mux.call_role("all", "hello")
            times.append(time.perf_counter() - start)
            assert len(result.outputs) == k
    return times[1:]


async def raw_fanout(url: str, k: int) -> list[float]:
    times = []
    async with httpx.AsyncClient() as client:
        for _ in range(RUNS + 1):
            start = time.perf_counter()
            bodies = [
                {"model": f"m{i}", "messages": [{"role": "user", "content": "hello"}]}
                for i in range(k)
            ]
            answers = await asyncio.gather(
                *(client.post(f"{url}/v1/chat/completions", json=b) for b in bodies)
            )
            assert all(a.status_code == 200 for a in answers)
            times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    with in_subprocess(DELAY, lean=True) as url:
        print(f"server delay (floor): {DELAY * 1000:.0f} ms per request")
        for k in KS:
            raw = statistics.median(asyncio.run(raw_fanout(url, k)))
            mux = statistics.median(asyncio.run(mux_fanout(url, k)))
            print(
                f"K={k:3d}  raw httpx2 {raw * 1000:6.1f} ms ({raw / DELAY:.2f}x)   "
                f"llm-mux parallel role {mux * 1000:6.1f} ms  ratio {mux / DELAY:.2f}x "
                f"(target <= 1.1 at K=64)"
            )


if __name__ == "__main__":
    main()
