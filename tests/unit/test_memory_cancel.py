"""The write gate of a store in its worker thread: cancelled before the commit, or done."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from llm_mux.memory.cancel import commit, run_cancellable
from llm_mux.memory.ingest import parse_store_input
from llm_mux.memory.store import MemoryStore

PAYLOAD = '{"facts": [{"project": "p", "fact": "f", "source": "s"}]}'


def wait_for_thread_end(name: str = "store", within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while any(t.name == name for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the store thread did not stop"
        time.sleep(0.01)


async def test_a_cancel_once_the_commit_began_waits_and_reports_the_result() -> None:
    committing, release = threading.Event(), threading.Event()

    def work() -> int:
        with commit():
            committing.set()
            release.wait(10)
        return 42

    task = asyncio.ensure_future(run_cancellable(work))
    assert await asyncio.to_thread(committing.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the commit, not cancelled
    release.set()
    assert await task == 42


async def test_a_cancel_before_the_write_stores_nothing(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.db")
    payload = parse_store_input(PAYLOAD)
    started, release = threading.Event(), threading.Event()

    def work() -> object:
        started.set()
        release.wait(10)
        return store.store(payload, ecosystem=None)

    task = asyncio.ensure_future(run_cancellable(work))
    assert await asyncio.to_thread(started.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await asyncio.to_thread(wait_for_thread_end)
    assert store.facts() == []


async def test_an_uncancelled_store_writes(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.db")
    counts = await run_cancellable(lambda: store.store_text(PAYLOAD, ecosystem=None))
    assert counts.facts == 1
    assert [f["fact"] for f in store.facts()] == ["f"]


async def test_a_cancel_while_a_postgres_write_runs_rolls_it_back(postgres_url: str) -> None:
    """PostgreSQL statements cannot be interrupted by the gate: the commit is refused instead."""
    store = MemoryStore(postgres_url)
    writing, release = threading.Event(), threading.Event()

    def work() -> object:
        with store.session("store into") as db, db.write():
            db.run(
                "INSERT INTO facts (ecosystem, project, fact, source, confidence, created_at,"
                " updated_at) VALUES ('', 'p', 'half', 's', 1.0, 'now', 'now')"
            )
            writing.set()
            release.wait(10)
        return "committed"

    task = asyncio.ensure_future(run_cancellable(work))
    assert await asyncio.to_thread(writing.wait, 10)
    task.cancel()
    await asyncio.sleep(0.05)  # the task takes the cancel (closing the gate) on its next turn
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(wait_for_thread_end)
    assert store.facts() == []


async def test_an_uncancelled_postgres_store_writes(postgres_url: str) -> None:
    store = MemoryStore(postgres_url)
    counts = await run_cancellable(lambda: store.store_text(PAYLOAD, ecosystem=None))
    assert counts.facts == 1
    assert [f["fact"] for f in store.facts()] == ["f"]
