"""``llm-mux serve``: overhead, streaming at scale, and requests per second.

Each figure is printed beside a floor measured in the same run, with the same client:
(a) overhead: p50/p99 latency of one request through ``serve`` to an instant loopback
    upstream, minus the same request sent to the upstream directly; sequential and at
    concurrency 64 (target: under +1 ms at p50). With an instant upstream, latency at
    concurrency c is queueing (Little's law: mean latency = c / throughput), so the
    throughput and the server's CPU time per request are printed beside it;
(b) 1,000 concurrent streaming requests to a mock answering in 1 s: all must succeed,
    wall time against the same client streaming from a minimal server that also answers
    in 1 s (target <= 1.3 s), the CPU time of server and client, the server's peak RSS;
(c) requests per second through ``serve`` with 1 and 2 workers (instant mock backend),
    against the same client sending to the instant upstream directly.

The server and the upstream run in their own processes; the client is a minimal asyncio
HTTP/1.1 client, so that the figures measure the servers rather than a client library.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2 as httpx
from tests.fakes.server import in_subprocess

EXECUTABLE = str(Path(sys.executable).parent / "llm-mux")
SEQUENTIAL = 400
CONCURRENT = 64
CONCURRENT_REQUESTS = 3000
STREAMS = 1000
RPS_REQUESTS = 4000
WARM_UP = 3  # requests per connection before the measured ones
BODY = {"model": "b", "messages": [{"role": "user", "content": "hello"}]}


@contextmanager
def serve(config: str, *args: str) -> Iterator[tuple[str, int]]:
    """(base URL, pid) of a running ``llm-mux serve`` for ``config``."""
    with tempfile.TemporaryDirectory() as directory:
        path, log = Path(directory) / "c.toml", Path(directory) / "log"
        path.write_text(config)
        with open(log, "wb") as sink:
            argv = [EXECUTABLE, "serve", "--config", str(path), "--port", "0", "--quiet", *args]
            proc = subprocess.Popen(argv, stderr=sink, stdin=subprocess.DEVNULL)
        try:
            yield _listening(log, proc), proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def _listening(log: Path, proc: subprocess.Popen[bytes]) -> str:
    for _ in range(1000):
        for line in log.read_text().splitlines():
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].split()[0]
                _wait_ready(url)
                return url
        if proc.poll() is not None:
            raise SystemExit(log.read_text())
        time.sleep(0.02)
    raise SystemExit("serve did not start")


def _wait_ready(url: str) -> None:
    for _ in range(500):
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def request_bytes(url: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    host = url.removeprefix("http://")
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> None:
    """One request on a keep-alive connection; the answer read whole (Content-Length)."""
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    json.loads(await reader.readexactly(length))


async def latencies(url: str, requests: int, concurrency: int, model: str = "b") -> list[float]:
    """Per-request latency (s) of ``requests`` chat requests on ``concurrency`` connections.

    A minimal HTTP/1.1 client (one write per request, keep-alive), so that what is measured
    is the servers, not the client library.
    """
    data = request_bytes(url, {**BODY, "model": model})
    host, port = url.removeprefix("http://").rsplit(":", 1)
    results: list[float] = []

    async def worker(count: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in range(WARM_UP):
                await exchange(reader, writer, data)
            for _ in range(count):
                started = time.perf_counter()
                await exchange(reader, writer, data)
                results.append(time.perf_counter() - started)
        finally:
            writer.close()

    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    return results


def overhead(upstream: str, served: str, pid: int) -> None:
    for label, requests, concurrency in (
        ("sequential", SEQUENTIAL, 1),
        (f"concurrency {CONCURRENT}", CONCURRENT_REQUESTS, CONCURRENT),
    ):
        direct: list[float] = []
        through: list[float] = []
        seconds, cpu, warm = {"direct": 0.0, "serve": 0.0}, 0.0, WARM_UP * concurrency
        for _ in range(3):  # interleaved, so load from elsewhere hits both alike
            started = time.perf_counter()
            direct += asyncio.run(latencies(upstream, requests // 3, concurrency))
            seconds["direct"] += time.perf_counter() - started
            started, before = time.perf_counter(), cpu_seconds(pid)
            through += asyncio.run(latencies(served, requests // 3, concurrency))
            seconds["serve"] += time.perf_counter() - started
            cpu += cpu_seconds(pid) - before
        sent = {"direct": len(direct) + 3 * warm, "serve": len(through) + 3 * warm}
        print(f"(a) overhead, {label}:")
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            floor, ours = pct(direct, q), pct(through, q)
            print(
                f"    {name}: direct (floor) {floor * 1000:6.2f} ms   through serve "
                f"{ours * 1000:6.2f} ms   overhead {(ours - floor) * 1000:+6.2f} ms"
            )
        rate = sent["serve"] / seconds["serve"]
        print(
            f"    server CPU {cpu / sent['serve'] * 1e6:.0f} us per request (the upstream hop "
            f"included); throughput through serve {rate:.0f} req/s, direct "
            f"{sent['direct'] / seconds['direct']:.0f} req/s"
        )
        if concurrency > 1:
            mean = sum(through) / len(through)
            print(
                f"    Little's law: {concurrency} in flight / {rate:.0f} req/s = "
                f"{concurrency / rate * 1000:.1f} ms (measured mean {mean * 1000:.1f} ms); "
                f"+1 ms at p50 would need about {concurrency / (pct(direct, 0.5) + 0.001):.0f} "
                "req/s through one process"
            )


async def streams(url: str, count: int) -> tuple[float, int, float, float]:
    """``count`` concurrent streaming requests: (wall time, how many ended well, when the
    last connection was made, when the first answer began)."""
    data = request_bytes(url, {**BODY, "model": "slow", "stream": True})
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connected: list[float] = []
    answered: list[float] = []

    async def one() -> bool:
        reader, writer = await asyncio.open_connection(host, int(port))
        connected.append(time.perf_counter())
        try:
            writer.write(data)
            seen = b""
            while b"data: [DONE]" not in seen and b"0\r\n\r\n" not in seen[-5:]:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if not seen:
                    answered.append(time.perf_counter())
                seen += chunk
            return seen.startswith(b"HTTP/1.1 200") and b"data: [DONE]" in seen
        finally:
            writer.close()

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)))
    wall = time.perf_counter() - started
    return wall, sum(results), max(connected) - started, min(answered) - started


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (``--workers``), so far."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


def rps(url: str, model: str = "b") -> float:
    started = time.perf_counter()
    asyncio.run(latencies(url, RPS_REQUESTS, CONCURRENT, model))
    return RPS_REQUESTS / (time.perf_counter() - started)


def best(run: Callable[[], float], times: int = 3) -> float:
    return max(run() for _ in range(times))


def streaming(floor_url: str, config: str) -> None:
    """(b): the same client against the 1 s floor and through ``serve``, interleaved."""
    walls: dict[str, list[float]] = {"floor": [], "serve": []}
    with serve(config) as (served, pid):
        idle = peak_rss_mb(pid)
        for _ in range(3):
            for name, url in (("floor", floor_url), ("serve", served)):
                before, client = cpu_seconds(pid), time.process_time()
                wall, ok, connected, answered = asyncio.run(streams(url, STREAMS))
                client = time.process_time() - client
                server = cpu_seconds(pid) - before if name == "serve" else 0.0
                walls[name].append(wall)
                print(
                    f"(b) {STREAMS} concurrent streams answering in 1 s, {name:5}: {ok}/"
                    f"{STREAMS} ok, wall {wall:.2f} s (all connected at {connected:.2f} s, "
                    f"first answer at {answered:.2f} s); CPU: client {client:.2f} s"
                    + (
                        f", server {server:.2f} s ({server / STREAMS * 1e6:.0f} us/stream)"
                        if name == "serve"
                        else ""
                    )
                )
        peak = peak_rss_mb(pid)
    floor, ours = sorted(walls["floor"])[1], sorted(walls["serve"])[1]
    print(
        f"    median wall: floor {floor:.2f} s, serve {ours:.2f} s (target <= 1.3 s; "
        f"{ours - floor:+.2f} s over the floor); server peak RSS {peak:.0f} MB ({idle:.0f} MB "
        "idle)"
    )


def main() -> None:
    print(f"{os.cpu_count()} CPUs; server, upstream and client in three processes")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with in_subprocess(0.0, lean=True) as upstream:
        config = f'[backends.b]\ncommand = "{upstream}/v1"\nmodel = "m"\nmax_retries = 0\n'
        with serve(config) as (served, pid):
            overhead(upstream, served, pid)
        mock = '[backends.slow]\ntype = "mock"\ndelay = 1000\n[backends.b]\ntype = "mock"\n'
        with in_subprocess(1.0, lean=True) as slow:
            streaming(slow, mock)
        floor = best(lambda: rps(upstream))
        print(
            f"(c) requests/s at concurrency {CONCURRENT}: direct to upstream (floor) {floor:6.0f}"
        )
        for workers in (1, 2):
            with serve(mock, "--workers", str(workers)) as (served, pid):
                before = cpu_seconds(pid)
                rate = best(lambda url=served: rps(url))  # type: ignore[misc]
                sent = 3 * (RPS_REQUESTS + WARM_UP * CONCURRENT)  # best() runs three
                cpu = (cpu_seconds(pid) - before) / sent
                print(
                    f"    serve, {workers} worker(s): {rate:6.0f} req/s ({rate / floor:.2f}x "
                    f"floor), server CPU {cpu * 1e6:.0f} us per request"
                )


if __name__ == "__main__":
    main()
