"""Opening a database retries while SQLite reports a lock, and only then."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import pytest

from llm_mux.memory.migrations import retry_while_locked


def flaky(failures: list[str]) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if failures:
            raise sqlite3.OperationalError(failures.pop(0))
        return "ok"

    return calls, action


def test_a_lock_is_waited_out() -> None:
    calls, action = flaky(["database is locked", "database is locked"])
    assert retry_while_locked(action, 5.0) == "ok"
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    calls, action = flaky(["no such table: facts"])
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry_while_locked(action, 5.0)
    assert len(calls) == 1


def test_a_lock_that_stays_fails_after_the_deadline() -> None:
    calls, action = flaky(["database is locked"] * 10_000)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        retry_while_locked(action, 0.5)
    assert 0.2 < time.monotonic() - started < 3.0
    assert 3 <= len(calls) < 200
