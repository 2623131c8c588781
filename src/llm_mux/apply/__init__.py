"""Apply edits proposed by an LLM safely: parse, confine, apply atomically, verify, roll back.

A step uses it as::

    edits = parse_edits(answer)                  # or edits_from_inline(step.edits)
    plan = plan_edits(edits, root, allow_paths=step.allow_paths)   # checks, writes nothing
    txn = apply_plan(plan)                       # atomic; rolls itself back on failure
    result = await run_verify(command, root, timeout=...)
    if not result.ok:
        txn.rollback()                           # byte for byte, mode bits too
"""

from __future__ import annotations

from llm_mux.apply.edits import (
    Edit,
    EditParseError,
    FileDiff,
    Hunk,
    HunkLine,
    Replace,
    edits_from_inline,
    parse_edits,
)
from llm_mux.apply.patch import (
    FileChange,
    MatchError,
    PathRefused,
    Plan,
    apply_edits,
    apply_plan,
    plan_edits,
)
from llm_mux.apply.rollback import RollbackError, Snapshot, Transaction
from llm_mux.apply.verify import VerifyResult, retry_prompt, run_verify

__all__ = [
    "Edit",
    "EditParseError",
    "FileChange",
    "FileDiff",
    "Hunk",
    "HunkLine",
    "MatchError",
    "PathRefused",
    "Plan",
    "Replace",
    "RollbackError",
    "Snapshot",
    "Transaction",
    "VerifyResult",
    "apply_edits",
    "apply_plan",
    "edits_from_inline",
    "parse_edits",
    "plan_edits",
    "retry_prompt",
    "run_verify",
]
