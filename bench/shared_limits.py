"""Shared limits through Redis: how exactly they hold, and what they cost per request.

a. 4 processes hammer one backend on a local instant server with ``rpm = 600``, ``burst = 1``
   through ``[shared]`` for ``--seconds``: requests admitted per second over the run ÷ the rate
   (target 0.95-1.05), and the busiest 1 s window ÷ (rate + burst) (target ≤ 1.05). The same
   run with per-process limiters, for contrast (4 times the rate).
b. One process, sequential requests to a lean local server: p50 and p99 per request through
   the shared limiter (``rpm`` never reached, ``max_concurrent = 64``) against the same
   requests with no limits (target: under +0.5 ms at p50).

Needs Debian's ``redis-server`` and ``llm-mux[redis]``. Run: ``.venv/bin/python
bench/shared_limits.py`` (``--seconds 5 --requests 500`` for a quicker run).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.fixtures import make_config
from tests.fakes.redis_server import start_redis, stop_redis
from tests.fakes.server import FakeLLMServer, in_subprocess

from llm_mux.config import Config, Shared
from llm_mux.roles import Multiplexer

RPM, BURST, PROCESSES = 600, 1, 4


def config(url: str, limits: dict[str, Any], redis_url: str | None, namespace: str) -> Config:
    base = make_config({"api": {"command": url + "/v1", "model": "m", **limits}})
    if redis_url is None:
        return base
    # 3 s, not the 250 ms default: on a busy machine a stalled call would switch the run to
    # local limits, and this measures the shared ones
    settings = {"redis_url": redis_url, "namespace": namespace, "timeout_ms": 3000}
    shared = Shared.model_validate(settings)
    return Config(**{**base.__dict__, "shared": shared})


async def worker(url: str, redis_url: str | None, namespace: str, seconds: float) -> None:
    """Keep 8 requests waiting on the limiter until ``seconds`` have passed."""
    cfg = config(url, {"rpm": RPM, "burst": BURST}, redis_url, namespace)
    deadline = time.monotonic() + seconds
    async with Multiplexer(cfg) as mux:

        async def loop() -> None:
            while time.monotonic() < deadline:
                await mux.call_backend("api", "p")

        await asyncio.gather(*(loop() for _ in range(8)))


def hammer(server: FakeLLMServer, redis_url: str | None, seconds: float) -> tuple[float, int]:
    """(admitted per second, busiest 1 s window) of PROCESSES workers."""
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, __file__, "--worker", server.url, redis_url or "-", namespace]
    argv.append(str(seconds))
    server.requests.clear()
    procs = [subprocess.Popen(argv) for _ in range(PROCESSES)]
    for proc in procs:
        proc.wait()
    times = sorted(s.at for s in server.requests if s.path.endswith("/chat/completions"))
    # the last requests admitted before the deadline may be sent after it: count the run's
    # span from the first start to the last
    rate = (len(times) - 1) / (times[-1] - times[0])
    busiest = max(sum(1 for t in times if first <= t < first + 1.0) for first in times)
    return rate, busiest


async def latencies(url: str, redis_url: str | None, requests: int) -> list[float]:
    limits = {"rpm": 10_000_000, "max_concurrent": 64} if redis_url else {}
    cfg = config(url, limits, redis_url, f"bench-{uuid.uuid4().hex[:8]}")
    out = []
    async with Multiplexer(cfg) as mux:
        for _ in range(50):  # warm-up: connections, scripts loaded
            await mux.call_backend("api", "p")
        for _ in range(requests):
            started = time.perf_counter()
            await mux.call_backend("api", "p")
            out.append((time.perf_counter() - started) * 1000)
    return out


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--worker", nargs=4)
    args = parser.parse_args()
    if args.worker:
        url, redis_url, namespace, seconds = args.worker
        asyncio.run(worker(url, None if redis_url == "-" else redis_url, namespace, float(seconds)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        redis, proc = start_redis(Path(tmp))
        try:
            run(redis.url, args)
        finally:
            stop_redis(proc)


def run(redis_url: str, args: argparse.Namespace) -> None:
    rate = RPM / 60
    server = FakeLLMServer().start()
    try:
        shared_rate, shared_busiest = hammer(server, redis_url, args.seconds)
        local_rate, local_busiest = hammer(server, None, args.seconds)
    finally:
        server.stop()
    print(f"(a) {PROCESSES} processes, rpm {RPM}, burst {BURST}, {args.seconds:g} s")
    print(
        f"    shared: {shared_rate:.2f}/s = {shared_rate / rate:.3f} × rate (target 0.95–1.05); "
        f"busiest 1 s: {shared_busiest} = {shared_busiest / (rate + BURST):.3f} × (rate + burst)"
        " (target ≤ 1.05)"
    )
    print(
        f"    per-process limiters: {local_rate:.2f}/s = {local_rate / rate:.2f} × rate; "
        f"busiest 1 s: {local_busiest}"
    )
    with in_subprocess(lean=True) as url:
        bare = asyncio.run(latencies(url, None, args.requests))
        limited = asyncio.run(latencies(url, redis_url, args.requests))
    print(f"(b) {args.requests} sequential requests, shared limiter vs no limits")
    for p in (50, 99):
        a, b = percentile(limited, p), percentile(bare, p)
        print(f"    p{p}: {a:.3f} ms vs {b:.3f} ms: +{a - b:.3f} ms, {a / b:.2f}×")


if __name__ == "__main__":
    main()
