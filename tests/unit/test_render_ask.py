"""Answers to ``input`` steps, read from a real file descriptor on the running event loop."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
from collections.abc import Iterator

import pytest

from llm_mux.render.ask import TerminalAsk
from llm_mux.workflow.runner import StepEvent


class CountingView:
    """A view that counts how often the live display was paused and resumed."""

    def __init__(self) -> None:
        self.starts = self.stops = 0

    def __call__(self, event: StepEvent) -> None:
        return None

    def start(self) -> None:
        self.starts += 1

    def stop(self) -> None:
        self.stops += 1

    async def ticker(self) -> None:
        return None


class Screen(io.StringIO):
    """stderr as the user sees it; ``shown(text)`` waits until ``text`` was written."""

    def __init__(self) -> None:
        super().__init__()
        self._written = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        self._written.set()
        return written

    async def shown(self, text: str) -> None:
        while text not in self.getvalue():
            self._written.clear()
            await asyncio.wait_for(self._written.wait(), 10)


@contextlib.contextmanager
def screen() -> Iterator[Screen]:
    """stderr replaced inside the test itself: pytest's capture swaps it between phases."""
    shown = Screen()
    with contextlib.redirect_stderr(shown):
        yield shown


@pytest.fixture
def typed(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """stdin replaced by a pipe; the test writes what the user types to the yielded fd."""
    read_end, write_end = os.pipe()
    stdin = os.fdopen(read_end, "r")
    monkeypatch.setattr(sys, "stdin", stdin)
    try:
        yield write_end
    finally:
        os.close(write_end)
        stdin.close()


async def test_a_number_picks_its_option_and_the_view_resumes(typed: int) -> None:
    view = CountingView()
    os.write(typed, b"2\n")
    with screen() as shown:
        assert await TerminalAsk(view)("Pick one", ["red", "blue"], None) == "blue"
    assert shown.getvalue() == "Pick one\n  1) red\n  2) blue\n> "
    assert (view.stops, view.starts) == (1, 1)


async def test_waiting_for_the_user_leaves_the_loop_running(typed: int) -> None:
    with screen() as shown:
        ask = asyncio.create_task(TerminalAsk(CountingView())("Name?", [], "anon"))
        await shown.shown("Name?\n[anon]> ")
        assert not ask.done()
        os.write(typed, b"nope\n")
        assert await asyncio.wait_for(ask, 10) == "nope"


async def test_a_wrong_answer_asks_again(typed: int) -> None:
    with screen() as shown:
        ask = asyncio.create_task(TerminalAsk(CountingView())("Pick", ["a", "b"], None))
        os.write(typed, b"9\n")
        await shown.shown("please answer with one of the options")
        os.write(typed, b"a\n")
        assert await asyncio.wait_for(ask, 10) == "a"


async def test_cancelling_the_question_stops_watching_stdin(typed: int) -> None:
    view = CountingView()
    with screen() as shown:
        ask = asyncio.create_task(TerminalAsk(view)("Pick", ["a"], None))
        await shown.shown("> ")
        ask.cancel()
        with pytest.raises(asyncio.CancelledError):
            await ask
    assert not asyncio.get_running_loop().remove_reader(sys.stdin.fileno())
    assert (view.stops, view.starts) == (1, 1)
