"""The runs ledger: which run owns an id, and what each of its steps produced.

Rows live in the memory database beside the knowledge (``workflow_runs`` and ``run_steps``),
so a job retried on another machine resumes from the shared database. A run is claimed with
one upsert whose ``WHERE`` admits it only when nobody holds a live lease, and ``RETURNING``
says whether it did: two processes resuming the same run never both run it. The holder
renews its lease while it runs; a killed holder's run can be claimed once the lease expires.
Lease times are ISO-8601 UTC text from the claiming host's clock, so hosts sharing a ledger
should keep their clocks roughly in step (well within a lease).

Every statement is the same SQL text on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from llm_mux.memory.database import Row
from llm_mux.memory.store import MemoryStore, ecosystem_key, iso_utc, utc_now
from llm_mux.secrets import redact
from llm_mux.values import Value

WHOLE_STEP = -1  # the ``item`` of a step's own row; for_each items are 0, 1, …

_CLAIM = """
INSERT INTO workflow_runs (id, ecosystem, project, workflow, started_at, finished_at, success,
                           duration_ms, error, steps, args, status, owner, lease_until)
VALUES (:id, :ecosystem, :project, :workflow, :now, '', 0, 0, '', '{}', :args, 'running',
        :owner, :lease_until)
ON CONFLICT (id) DO UPDATE SET
    status = 'running', owner = excluded.owner, lease_until = excluded.lease_until,
    started_at = excluded.started_at, finished_at = '', error = '', success = 0,
    args = excluded.args, workflow = excluded.workflow
WHERE workflow_runs.status <> 'running' OR workflow_runs.lease_until < :now
RETURNING id"""

_FORGET_STEPS = "DELETE FROM run_steps WHERE run_id = :id"

# Step results (outputs included) of runs finished longer ago than this are dropped when a
# new run starts, so the ledger does not grow without bound; those runs cannot be resumed.
KEEP_STEPS = timedelta(days=7)
_PRUNE = """
DELETE FROM run_steps WHERE run_id IN (
    SELECT id FROM workflow_runs
    WHERE status <> 'running' AND finished_at <> '' AND finished_at < :cutoff)"""

_RENEW = """
UPDATE workflow_runs SET lease_until = :lease_until WHERE id = :id AND owner = :owner"""

_FINISH = """
UPDATE workflow_runs SET
    status = :status, finished_at = :now, success = :success, duration_ms = :duration_ms,
    error = :error, steps = :steps, owner = '', lease_until = ''
WHERE id = :id AND owner = :owner"""

_RECORD_STEP = """
INSERT INTO run_steps (run_id, step, item, input_hash, status, result_json, finished_at)
SELECT :run_id, :step, :item, :input_hash, :status, :result_json, :now
FROM workflow_runs WHERE id = :run_id AND owner = :owner
ON CONFLICT (run_id, step, item) DO UPDATE SET
    input_hash = excluded.input_hash, status = excluded.status,
    result_json = excluded.result_json, finished_at = excluded.finished_at"""

_RUN_COLUMNS = "id, workflow, args, status, owner, lease_until, started_at, ecosystem, project"
_FIND = f"SELECT {_RUN_COLUMNS} FROM workflow_runs WHERE id = :id"
_LATEST = f"""SELECT {_RUN_COLUMNS} FROM workflow_runs WHERE workflow = :workflow
ORDER BY started_at DESC, id LIMIT 1"""
_STEPS = """SELECT step, item, input_hash, status, result_json FROM run_steps
WHERE run_id = :run_id"""


class RecordedRun(Value):
    """A run as the ledger holds it."""

    id: str
    workflow: str
    args: dict[str, str]
    status: str
    lease_until: str


class RecordedStep(Value):
    """One step (or for_each item) as the ledger holds it."""

    input_hash: str
    status: str
    result: dict[str, Any]


class StepRecord(Value):
    """One step (or item) result to write."""

    step: str
    item: int
    input_hash: str
    status: str
    result: dict[str, Any]


class Ledger:
    """The ledger in one memory database, for one owner (this process's run)."""

    def __init__(self, store: MemoryStore, owner: str, lease_s: float) -> None:
        self.store = store
        self.owner = owner
        self.lease_s = lease_s

    def find(self, run_id: str) -> RecordedRun | None:
        with self.store.session("read") as db:
            rows = db.rows(_FIND, {"id": run_id})
        return _run(rows[0]) if rows else None

    def latest(self, workflow: str) -> RecordedRun | None:
        with self.store.session("read") as db:
            rows = db.rows(_LATEST, {"workflow": workflow})
        return _run(rows[0]) if rows else None

    def claim(
        self,
        run_id: str,
        *,
        workflow: str,
        args: Mapping[str, str],
        ecosystem: str | None,
        project: str | None,
        fresh: bool,
    ) -> bool:
        """Take the run (a fresh run forgets its earlier steps); False if another holds it."""
        row = {
            "id": run_id,
            "ecosystem": ecosystem_key(ecosystem),
            "project": redact(project or ""),
            "workflow": workflow,
            "now": utc_now(),
            "args": redact(json.dumps(dict(args), sort_keys=True)),
            "owner": self.owner,
            "lease_until": self._lease_until(),
        }
        with self.store.session() as db, db.write():
            if not db.rows(_CLAIM, row):
                return False
            if fresh:
                db.run(_FORGET_STEPS, row)
                db.run(_PRUNE, {"cutoff": iso_utc(datetime.now(UTC) - KEEP_STEPS)})
        return True

    def renew(self, run_id: str) -> None:
        params = {"id": run_id, "owner": self.owner, "lease_until": self._lease_until()}
        with self.store.session() as db, db.write():
            db.run(_RENEW, params)

    def steps(self, run_id: str) -> dict[tuple[str, int], RecordedStep]:
        with self.store.session("read") as db:
            rows = db.rows(_STEPS, {"run_id": run_id})
        return {(r["step"], int(r["item"])): _step(r) for r in rows}

    def record_steps(self, run_id: str, steps: list[StepRecord]) -> None:
        """Write step results in one transaction (only while this owner holds the run)."""
        now = utc_now()
        rows = [
            {
                "run_id": run_id,
                "step": step.step,
                "item": step.item,
                "input_hash": step.input_hash,
                "status": step.status,
                "result_json": redact(json.dumps(step.result, default=str)),
                "now": now,
                "owner": self.owner,
            }
            for step in steps
        ]
        with self.store.session() as db, db.write():
            db.run_many(_RECORD_STEP, rows)

    def finish(
        self,
        run_id: str,
        *,
        success: bool,
        duration_ms: int,
        error: str | None,
        steps: Mapping[str, Any],
    ) -> None:
        from llm_mux.memory.database import utf8_safe

        params = {
            "id": run_id,
            "owner": self.owner,
            "status": "success" if success else "failed",
            "now": utc_now(),
            "success": int(success),
            "duration_ms": int(duration_ms),
            "error": redact(utf8_safe(error or "")),
            "steps": redact(json.dumps(dict(steps), default=str)),
        }
        with self.store.session() as db, db.write():
            db.run(_FINISH, params)

    def _lease_until(self) -> str:
        return iso_utc(datetime.now(UTC) + timedelta(seconds=self.lease_s))


def _run(row: Row) -> RecordedRun:
    try:
        args = json.loads(row["args"] or "{}")
    except ValueError:
        args = {}
    args = {str(k): str(v) for k, v in args.items()} if isinstance(args, dict) else {}
    return RecordedRun(row["id"], row["workflow"], args, row["status"], row["lease_until"])


def _step(row: Row) -> RecordedStep:
    try:
        result = json.loads(row["result_json"] or "{}")
    except ValueError:
        result = {}
    return RecordedStep(
        row["input_hash"], row["status"], result if isinstance(result, dict) else {}
    )
