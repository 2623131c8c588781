"""Several processes writing one fresh memory database at the same moment lose nothing.

On both stores: a fresh SQLite file, and a fresh database on a real PostgreSQL server.

Each writer is a real ``python -c`` process; all of them first report ``ready`` and then
wait for one byte on stdin, so their first open of the new file (the switch to WAL and the
migrations) and their writes really collide.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from llm_mux.memory import MemoryStore
from llm_mux.memory.migrations import MIGRATIONS

WRITER = """
import json, sys
from llm_mux.memory import MemoryStore
path, worker, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = MemoryStore(path)
print("ready", flush=True)
sys.stdin.readline()
if mode == "same":
    facts = [{"project": "p", "fact": f"fact {i}", "source": "s"} for i in range(count)]
    store.store_text(json.dumps({"facts": facts}), ecosystem="eco")
else:
    for i in range(count):
        fact = {"project": f"worker-{worker}", "fact": f"fact {i}", "source": "s"}
        store.store_text(json.dumps({"facts": [fact]}), ecosystem="eco")
print("done", flush=True)
"""


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database nobody has opened yet: a file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "shared" / "memory.db")
    return str(request.getfixturevalue("postgres_url"))


def run_together(path: Path | str, workers: int, count: int, mode: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(n), str(count), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [proc.communicate(timeout=90) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "done"


def query(target: str, sql: str) -> list[tuple[object, ...]]:
    with MemoryStore(target).session("read") as db:
        return [tuple(row.values()) for row in db.rows(sql)]


def integrity(target: str) -> None:
    if "://" not in target:
        with sqlite3.connect(target) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_four_writers_on_a_fresh_database_lose_nothing(target: str) -> None:
    run_together(target, workers=4, count=50, mode="each")
    per_worker = query(target, "SELECT project, count(*) AS n FROM facts GROUP BY project")
    assert sorted(per_worker) == [(f"worker-{n}", 50) for n in range(4)]
    integrity(target)
    assert query(target, "SELECT count(*) FROM migrations")[0][0] == len(MIGRATIONS)


def test_eight_writers_storing_the_same_facts_leave_one_row_each(target: str) -> None:
    run_together(target, workers=8, count=20, mode="same")
    assert query(target, "SELECT count(*) AS n, count(DISTINCT fact) AS d FROM facts") == [(20, 20)]
    integrity(target)
    assert query(target, "SELECT count(*) AS n, count(DISTINCT name) AS d FROM migrations") == [
        (len(MIGRATIONS), len(MIGRATIONS))
    ]
