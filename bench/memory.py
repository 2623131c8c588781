"""Benchmark: one store step of 10,000 facts and a filtered read, against the raw driver.

On SQLite the floor is plain ``sqlite3`` on the same schema with the same settings (WAL,
synchronous NORMAL, one ``BEGIN IMMEDIATE`` transaction, ``executemany``), measured in the same
run on fresh files. With ``--postgres URL`` the store runs on that PostgreSQL database and the
floor is raw psycopg: one connection, one transaction, ``executemany`` into a table of the same
shape (``--postgres auto`` starts a throwaway server with the test suite's fixture; run from
the repository root). Each figure is the median of several rounds (a read: the best of 5
within a round). Target: ratio <= 1.5.

    python bench/memory.py [--facts N] [--rounds R] [--postgres URL|auto]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from llm_mux.memory import FactItem, MemoryStore, StorePayload
from llm_mux.memory.migrations import MIGRATIONS
from llm_mux.memory.store import utc_now

PROJECTS = 10
READS = 5  # a read takes a few ms: the best of several per round steadies the figure
ECOSYSTEM = "bench"
INSERT = """INSERT INTO facts (ecosystem, project, fact, source, source_type, category,
    confidence, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
SELECT = """SELECT ecosystem, project, fact, source, source_type, category, confidence,
    created_at, updated_at FROM facts WHERE ecosystem = ? AND project = ?
    ORDER BY updated_at DESC, project, fact, source"""


def make_facts(count: int) -> list[FactItem]:
    return [
        FactItem(
            project=f"project-{i % PROJECTS}",
            fact=f"Fact number {i}: the service uses component {i * 7 % 1000}",
            source=f"src/module_{i % 97}.py",
            confidence=0.5 + (i % 50) / 100,
            category=("db", "api", "ui", "infra")[i % 4],
            source_type="file",
        )
        for i in range(count)
    ]


def floor_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL").fetchone()
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def floor_create(path: Path) -> None:
    conn = floor_connect(path)
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    conn.close()


def floor_store(path: Path, facts: list[FactItem]) -> None:
    now = utc_now()
    rows = [
        (ECOSYSTEM, f.project, f.fact, f.source, f.source_type, f.category, f.confidence, now, now)
        for f in facts
    ]
    conn = floor_connect(path)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(INSERT, rows)
    conn.execute("COMMIT")
    conn.close()


def floor_read(path: Path) -> int:
    conn = floor_connect(path)
    rows = conn.execute(SELECT, (ECOSYSTEM, "project-3")).fetchall()
    conn.close()
    return len(rows)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def one_round(root: Path, n: int, facts: list[FactItem]) -> tuple[float, float, float, float]:
    ours_path, floor_path = root / f"ours-{n}.db", root / f"floor-{n}.db"
    store = MemoryStore(ours_path)
    store.store(StorePayload(facts=(FactItem("warm", "up", "bench"),)), ecosystem="warmup")
    floor_create(floor_path)
    payload = StorePayload(facts=tuple(facts))
    ours_first = n % 2 == 0  # alternate, so neither side always meets a warmer disk cache
    if not ours_first:
        floor_write = timed(lambda: floor_store(floor_path, facts))
    ours_write = timed(lambda: store.store(payload, ecosystem=ECOSYSTEM))
    if ours_first:
        floor_write = timed(lambda: floor_store(floor_path, facts))
    ours_read = min(
        timed(lambda: store.facts(project="project-3", ecosystem=ECOSYSTEM)) for _ in range(READS)
    )
    floor_read_s = min(timed(lambda: floor_read(floor_path)) for _ in range(READS))
    assert len(store.facts(project="project-3", ecosystem=ECOSYSTEM)) == floor_read(floor_path)
    return ours_write, floor_write, ours_read, floor_read_s


def report(label: str, ours: list[float], floor: list[float]) -> float:
    ours_ms, floor_ms = statistics.median(ours) * 1000, statistics.median(floor) * 1000
    ratio = ours_ms / floor_ms
    print(f"{label:<28} llm-mux {ours_ms:8.1f} ms   floor {floor_ms:8.1f} ms   ratio {ratio:.2f}x")
    return ratio


PG_FLOOR = "bench_floor_facts"


def pg_floor_create(url: str) -> None:
    import psycopg

    from llm_mux.memory.postgres import postgres_ddl

    (create,) = MIGRATIONS[0].statements
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PG_FLOOR}")
        conn.execute(postgres_ddl(create).replace("CREATE TABLE facts", f"CREATE TABLE {PG_FLOOR}"))


def pg_clear(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {PG_FLOOR}")
        conn.execute("TRUNCATE facts")


def pg_floor_store(url: str, facts: list[FactItem]) -> None:
    import psycopg

    now = utc_now()
    rows = [
        (ECOSYSTEM, f.project, f.fact, f.source, f.source_type, f.category, f.confidence, now, now)
        for f in facts
    ]
    with psycopg.connect(url) as conn, conn.cursor() as cursor:  # one transaction
        cursor.executemany(INSERT.replace("facts", PG_FLOOR, 1).replace("?", "%s"), rows)


def pg_floor_read(url: str) -> int:
    import psycopg

    sql = SELECT.replace("FROM facts", f"FROM {PG_FLOOR}").replace("?", "%s")
    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute(sql, (ECOSYSTEM, "project-3")).fetchall())


def pg_round(url: str, n: int, facts: list[FactItem]) -> tuple[float, float, float, float]:
    store = MemoryStore(url)
    pg_clear(url)
    payload = StorePayload(facts=tuple(facts))
    ours_first = n % 2 == 0
    if not ours_first:
        floor_write = timed(lambda: pg_floor_store(url, facts))
    ours_write = timed(lambda: store.store(payload, ecosystem=ECOSYSTEM))
    if ours_first:
        floor_write = timed(lambda: pg_floor_store(url, facts))
    ours_read = min(
        timed(lambda: store.facts(project="project-3", ecosystem=ECOSYSTEM)) for _ in range(READS)
    )
    floor_read_s = min(timed(lambda: pg_floor_read(url)) for _ in range(READS))
    assert len(store.facts(project="project-3", ecosystem=ECOSYSTEM)) == pg_floor_read(url)
    return ours_write, floor_write, ours_read, floor_read_s


def pg_rounds(url: str, rounds: int, facts: list[FactItem]) -> list[tuple[float, ...]]:
    store = MemoryStore(url)
    store.store(StorePayload(facts=(FactItem("warm", "up", "bench"),)), ecosystem="warmup")
    pg_floor_create(url)
    return [pg_round(url, n, facts) for n in range(rounds)]


def with_server(action: Callable[[str], list[tuple[float, ...]]]) -> list[tuple[float, ...]]:
    """Run ``action`` against a fresh database on a throwaway server (the tests' fixture)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.fakes.postgres import _bindir, start_server, stop_server

    bindir = _bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL binaries found (Debian: apt-get install postgresql-15)")
    server = start_server(bindir)
    try:
        return action(server.url(server.create_database()))
    finally:
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--postgres", metavar="URL|auto", help="measure on PostgreSQL instead")
    args = parser.parse_args()
    facts = make_facts(args.facts)
    results: list[tuple[float, ...]]
    if args.postgres == "auto":
        results = with_server(lambda url: pg_rounds(url, args.rounds, facts))
    elif args.postgres:
        results = pg_rounds(args.postgres, args.rounds, facts)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            results = [one_round(Path(tmp), n, facts) for n in range(args.rounds)]
    columns = list(zip(*results, strict=True))
    store = "PostgreSQL, raw psycopg floor" if args.postgres else "SQLite, raw sqlite3 floor"
    print(f"{args.facts} facts, {PROJECTS} projects, median of {args.rounds} rounds ({store})")
    write = report("store (one transaction)", list(columns[0]), list(columns[1]))
    read = report("read one project (1/10)", list(columns[2]), list(columns[3]))
    total = report(
        "store + read",
        [a + b for a, b in zip(columns[0], columns[2], strict=True)],
        [a + b for a, b in zip(columns[1], columns[3], strict=True)],
    )
    verdict = "ok" if max(write, total) <= 1.5 else "over target"
    print(f"target <= 1.5x: {verdict} (read alone {read:.2f}x)")


if __name__ == "__main__":
    main()
