"""CLI backend overhead: 200 calls at concurrency 8 to a no-op script.

The floor is raw ``asyncio.create_subprocess_exec`` of the same script (stdout captured,
stdin closed) at the same concurrency, measured in the same run. Prints both wall times and
the ratio llm-mux / raw (target: at most 1.3).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.fixtures import make_config

from llm_mux.roles import Multiplexer

SCRIPT = str(Path(__file__).resolve().parent.parent / "tests" / "fakes" / "noop.sh")
CALLS = 200
CONCURRENCY = 8
RUNS = 5


async def raw() -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> bytes:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                SCRIPT,
                f"prompt {i}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            out, _ = await proc.communicate()
            return out

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(CALLS)))
    return time.perf_counter() - start


async def mux() -> float:
    config = make_config({"noop": {"command": SCRIPT, "max_concurrent": CONCURRENCY}})
    async with Multiplexer(config) as mx:
        start = time.perf_counter()
        await asyncio.gather(*(mx.call_backend("noop", f"prompt {i}") for i in range(CALLS)))
        return time.perf_counter() - start


def main() -> None:
    floors, walls = [], []
    for _ in range(RUNS):  # interleaved, so load from elsewhere hits both alike
        floors.append(asyncio.run(raw()))
        walls.append(asyncio.run(mux()))
    floor, ours = statistics.median(floors), statistics.median(walls)
    print(f"{CALLS} calls at concurrency {CONCURRENCY} to a no-op script")
    for label, wall in (("raw asyncio subprocess (floor)", floor), ("llm-mux CLI backend", ours)):
        print(f"{label:30s}: {wall * 1000:7.1f} ms  {wall / CALLS * 1000:.2f} ms/call")
    print(f"ratio {ours / floor:.2f}x (target <= 1.3)")


if __name__ == "__main__":
    main()
