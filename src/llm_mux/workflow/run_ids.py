"""Starting a recorded run: ``--run-id`` / ``LLM_MUX_RUN_ID`` and ``--resume ID|last``.

A fresh run claims its id (a new one unless named) and forgets what an earlier run of that
id recorded; a resumed run takes its recorded args and steps. Whoever holds a live lease on
the id keeps it: a second process exits 1 naming the run. A fresh run whose ledger cannot be
written warns once and goes on unrecorded; ``--resume`` needs the ledger, so it fails instead.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from llm_mux.errors import LlmMuxError, StoreError, UsageError
from llm_mux.memory.ledger import Ledger, RecordedRun
from llm_mux.memory.store import MemoryStore
from llm_mux.values import Value
from llm_mux.workflow.resume import UNRECORDED, Journal, warn

LEASE_S = 30.0
ENV_VAR = "LLM_MUX_RUN_ID"
MAX_ID_LENGTH = 200


class RunIdentity(Value):
    """What the command line asked: a run id to use, or a run to resume."""

    run_id: str | None = None
    resume: str | None = None


class RunInProgress(LlmMuxError):
    """Another process holds the run's lease (exit 1)."""

    kind = "error"


def check_run_id(value: str, option: str) -> str:
    """A usable run id: non-empty printable text of reasonable length."""
    text = value.strip()
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        raise UsageError(f"{option} must be 1 to {MAX_ID_LENGTH} printable characters")
    return text


def owner_id() -> str:
    """Who holds a lease: host, process and a random part (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def resumed_run(store: MemoryStore, workflow: str, wanted: str) -> RecordedRun:
    """The recorded run ``--resume`` names (``last``: the latest run of ``workflow``)."""
    ledger = Ledger(store, owner_id(), LEASE_S)
    found = ledger.latest(workflow) if wanted == "last" else ledger.find(wanted)
    where = f"in {store.location}"
    if found is None and wanted == "last":
        raise UsageError(f"no earlier run of workflow '{workflow}' to resume {where}")
    if found is None:
        raise UsageError(f"no run '{wanted}' to resume {where}")
    if found.workflow != workflow:
        raise UsageError(
            f"run '{found.id}' is a run of workflow '{found.workflow}', not '{workflow}'"
        )
    return found


def begin(
    store: MemoryStore,
    *,
    workflow: str,
    run_id: str,
    args: Mapping[str, str],
    resuming: bool,
    ecosystem: str | None,
    project: str | None,
    project_dir: Path,
    backends: Mapping[str, Any],
) -> Journal | None:
    """Claim ``run_id`` and return its journal (None: unrecorded, already warned)."""
    ledger = Ledger(store, owner_id(), LEASE_S)
    claim: Callable[[], bool] = lambda: ledger.claim(  # noqa: E731
        run_id,
        workflow=workflow,
        args=args,
        ecosystem=ecosystem,
        project=project,
        fresh=not resuming,
    )
    try:
        claimed = claim()
        recorded = ledger.steps(run_id) if claimed and resuming else {}
    except StoreError as exc:
        if resuming:
            raise
        warn(f"{UNRECORDED} ({exc.message})")
        return None
    if not claimed:
        raise RunInProgress(
            f"run '{run_id}' is in progress in another process; "
            f"it can be resumed when that process ends (or {LEASE_S:g} s after it died)"
        )
    return Journal(ledger, run_id, recorded, project_dir, backends)


def new_run_id() -> str:
    return uuid.uuid4().hex
