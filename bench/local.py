"""Tokens/s of the ``local`` backend against xllamacpp called directly, and slots in use.

1. One answer at a time: ``LocalBackend.complete`` against ``xllamacpp.Server.
   handle_chat_completions`` (in-process, no streaming) on a second server with the same
   settings, alternated so both see the same machine load (target: ratio >= 0.95).
2. Four answers at once through the backend with ``parallel = 4`` against one answer, and
   against four answers with ``parallel = 1`` (one slot: they queue).

Every answer is the same deterministic (temperature 0) ``TOKENS``-token completion.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import threading
import time
from typing import Any

from llm_mux.backends.base import Request
from llm_mux.backends.local import LocalBackend
from llm_mux.backends.local_model import ModelKey, _params, cpu_count, xllamacpp_module
from llm_mux.config import Backend, Defaults

PROMPT = "Write a story about a cat."
TOKENS = 256
ROUNDS = 7


def backend(parallel: int) -> LocalBackend:
    cfg = Backend(type="local", max_tokens=TOKENS, parallel=parallel)
    return LocalBackend(f"local-p{parallel}", cfg, Defaults())


def direct_server(key: ModelKey) -> Any:
    """xllamacpp built from the very parameters the backend uses (``local_model._params``),
    so the two differ only in how an answer is asked for: the in-process handler here, the
    loopback listener in the backend."""
    return xllamacpp_module().Server(_params(key, secrets.token_hex(16)))


def direct_call(server: Any) -> int:
    body = {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": TOKENS}
    answer = server.handle_chat_completions({**body, "temperature": 0})
    return int(answer["usage"]["completion_tokens"])


async def backend_rate(local: LocalBackend) -> float:
    started = time.perf_counter()
    response = await local.complete(Request(PROMPT))
    assert response.usage is not None and response.usage.output_tokens is not None
    return response.usage.output_tokens / (time.perf_counter() - started)


def direct_rate(server: Any) -> float:
    started = time.perf_counter()
    tokens = direct_call(server)
    return tokens / (time.perf_counter() - started)


async def single_stream(local: LocalBackend, server: Any) -> None:
    """Adjacent pairs, so each ratio compares runs under the same load from other processes."""
    ours, floor = [], []
    for _ in range(ROUNDS):
        floor.append(direct_rate(server))
        ours.append(await backend_rate(local))
    ratio = statistics.median(o / f for o, f in zip(ours, floor, strict=True))
    mine, base = statistics.median(ours), statistics.median(floor)
    print(f"xllamacpp direct, 1 answer : {base:6.1f} tokens/s (floor, median of {ROUNDS})")
    print(f"LocalBackend, 1 answer     : {mine:6.1f} tokens/s  ratio {ratio:.2f} (>= 0.95)")


async def wall(local: LocalBackend, calls: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(local.complete(Request(PROMPT)) for _ in range(calls)))
    return time.perf_counter() - started


def direct_wall(server: Any, calls: int) -> float:
    threads = [threading.Thread(target=direct_call, args=(server,)) for _ in range(calls)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


async def concurrency(four_slots: LocalBackend, one_slot: LocalBackend, server: Any) -> None:
    """Interleaved rounds, so each figure sees the same load from other processes."""
    ones, fours, queued, direct = [], [], [], []
    for _ in range(3):
        ones.append(await wall(four_slots, 1))
        fours.append(await wall(four_slots, 4))
        queued.append(await wall(one_slot, 4))
        direct.append(direct_wall(server, 4))
    one, four = statistics.median(ones), statistics.median(fours)
    print(f"1 answer, parallel=4       : {one:6.2f} s  ({TOKENS / one:.0f} tokens/s, median of 3)")
    print(
        f"4 answers, parallel=4      : {four:6.2f} s  = {four / one:.2f}x one answer "
        f"({4 * TOKENS / four:.0f} tokens/s)"
    )
    for label, times in (("parallel=1", queued), ("direct", direct)):
        median = statistics.median(times)
        print(f"4 answers, {label:<16}: {median:6.2f} s  = {median / one:.2f}x one answer")


async def main() -> None:
    four_slots, one_slot = backend(4), backend(1)
    print(f"model {(await four_slots.check())}")
    await one_slot.check()
    server = direct_server(four_slots.model_key())
    direct_call(server)  # warm both
    await four_slots.complete(Request(PROMPT))
    print(f"{cpu_count()} CPUs, {TOKENS}-token answers")
    await single_stream(four_slots, server)
    await concurrency(four_slots, one_slot, server)


if __name__ == "__main__":
    asyncio.run(main())
