"""The runs ledger on both stores: claims, leases, fenced writes, pruning."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llm_mux.memory import MemoryStore
from llm_mux.memory.ledger import KEEP_STEPS, WHOLE_STEP, Ledger, StepRecord
from llm_mux.memory.store import iso_utc


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MemoryStore:
    if request.param == "sqlite":
        return MemoryStore(tmp_path / "ledger.db")
    return MemoryStore(request.getfixturevalue("postgres_url"))


def claim(ledger: Ledger, run_id: str = "r1", *, fresh: bool = True) -> bool:
    return ledger.claim(
        run_id, workflow="w", args={"a": "1"}, ecosystem=None, project=None, fresh=fresh
    )


def record(ledger: Ledger, step: str, run_id: str = "r1") -> None:
    ledger.record_steps(run_id, [StepRecord(step, WHOLE_STEP, "h", "success", {"output": step})])


def test_a_live_lease_keeps_the_run_and_finishing_releases_it(store: MemoryStore) -> None:
    first, second = Ledger(store, "one", 60), Ledger(store, "two", 60)
    assert claim(first)
    assert not claim(second, fresh=False)
    record(first, "a")
    first.finish("r1", success=False, duration_ms=5, error="boom", steps={"a": "success"})
    assert claim(second, fresh=False)
    assert set(second.steps("r1")) == {("a", WHOLE_STEP)}
    found = second.find("r1")
    assert found is not None and found.args == {"a": "1"} and found.status == "running"


def test_a_dead_holders_run_is_free_once_its_lease_expires(store: MemoryStore) -> None:
    dead, rescuer = Ledger(store, "dead", 3), Ledger(store, "rescuer", 60)
    started = time.monotonic()
    assert claim(dead)
    record(dead, "a")
    assert not claim(rescuer, fresh=False)
    while not claim(rescuer, fresh=False):
        assert time.monotonic() - started < 10
        time.sleep(0.1)
    assert time.monotonic() - started >= 3
    record(dead, "late")  # the dead holder's late write is fenced off
    assert set(rescuer.steps("r1")) == {("a", WHOLE_STEP)}


def test_renewing_keeps_the_lease_past_its_first_term(store: MemoryStore) -> None:
    holder, other = Ledger(store, "holder", 2), Ledger(store, "other", 60)
    assert claim(holder)
    started = time.monotonic()
    while time.monotonic() - started < 3.5:  # well past the first term
        time.sleep(0.4)
        holder.renew("r1")
        assert not claim(other, fresh=False)


def test_a_fresh_run_forgets_its_steps_and_old_runs_are_pruned(store: MemoryStore) -> None:
    ledger = Ledger(store, "me", 60)
    assert claim(ledger, "old")
    record(ledger, "a", "old")
    ledger.finish("old", success=True, duration_ms=1, error=None, steps={})
    long_ago = iso_utc(datetime.now(UTC) - KEEP_STEPS - timedelta(hours=1))
    with store.session() as db, db.write():
        db.run("UPDATE workflow_runs SET finished_at = :t WHERE id = 'old'", {"t": long_ago})
    assert claim(ledger, "recent")
    record(ledger, "a", "recent")
    assert ledger.steps("old") == {}
    ledger.finish("recent", success=False, duration_ms=1, error="x", steps={})
    assert claim(ledger, "recent")  # the same id, fresh: earlier steps are forgotten
    assert ledger.steps("recent") == {}
    latest = ledger.latest("w")
    assert latest is not None and latest.id == "recent"
