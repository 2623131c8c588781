"""Parallel fan-out: one prompt to K HTTP backends that each answer after 200 ms.

The floor is the server's 200 ms (and, measured in the same run, raw httpx2 sending the K
requests at once through one default AsyncClient). Prints the median wall time per K, the
ratio wall / 200 ms (target: at most 1.1 at K = 64), and the client's median CPU time per
round: the server (an asyncio process of its own) answers all K at once, so what a round
takes beyond 200 ms is, almost entirely, the client's CPU time.
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


Timing = tuple[float, float]  # (wall, client CPU) of one round, seconds


async def mux_fanout(url: str, k: int) -> list[Timing]:
    backends = {f"b{i}": {"command": f"{url}/v1", "model": f"m{i}"} for i in range(k)}
    config = make_config(backends, {"all": {"backends": list(backends), "execution": "parallel"}})
    times = []
    async with Multiplexer(config) as mux:
        for _ in range(RUNS + 1):  # the first run opens the connections
            start, cpu = time.perf_counter(), time.process_time()
            result = await mux.call_role("all", "hello")
            times.append((time.perf_counter() - start, time.process_time() - cpu))
            assert len(result.outputs) == k
    return times[1:]


async def raw_fanout(url: str, k: int) -> list[Timing]:
    times = []
    async with httpx.AsyncClient() as client:
        for _ in range(RUNS + 1):
            start, cpu = time.perf_counter(), time.process_time()
            bodies = [
                {"model": f"m{i}", "messages": [{"role": "user", "content": "hello"}]}
                for i in range(k)
            ]
            answers = await asyncio.gather(
                *(client.post(f"{url}/v1/chat/completions", json=b) for b in bodies)
            )
            assert all(a.status_code == 200 for a in answers)
            times.append((time.perf_counter() - start, time.process_time() - cpu))
    return times[1:]


def medians(times: list[Timing]) -> Timing:
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def main() -> None:
    with in_subprocess(DELAY, lean=True) as url:
        print(f"server delay (floor): {DELAY * 1000:.0f} ms per request")
        for k in KS:
            raw, raw_cpu = medians(asyncio.run(raw_fanout(url, k)))
            mux, mux_cpu = medians(asyncio.run(mux_fanout(url, k)))
            print(
                f"K={k:3d}  raw httpx2 {raw * 1000:6.1f} ms ({raw / DELAY:.2f}x, "
                f"cpu {raw_cpu * 1000:4.1f} ms)   llm-mux parallel role {mux * 1000:6.1f} ms "
                f"(cpu {mux_cpu * 1000:4.1f} ms)  ratio {mux / DELAY:.2f}x (target <= 1.1 at K=64)"
            )


if __name__ == "__main__":
    main()
