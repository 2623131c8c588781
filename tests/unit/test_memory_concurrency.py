"""Several processes writing one fresh memory database at the same moment lose nothing.

Each writer is a real ``python -c`` process; all of them first report ``ready`` and then
wait for one byte on stdin, so their first open of the new file (the switch to WAL and the
migrations) and their writes really collide.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

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


def run_together(path: Path, workers: int, count: int, mode: str) -> None:
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


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_four_writers_on_a_fresh_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "memory.db"
    run_together(path, workers=4, count=50, mode="each")
    per_worker = query(path, "SELECT project, count(*) FROM facts GROUP BY project")
    assert sorted(per_worker) == [(f"worker-{n}", 50) for n in range(4)]
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert query(path, "SELECT count(*) FROM migrations")[0][0] == 4


def test_eight_writers_storing_the_same_facts_leave_one_row_each(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    run_together(path, workers=8, count=20, mode="same")
    assert query(path, "SELECT count(*), count(DISTINCT fact) FROM facts") == [(20, 20)]
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
