"""Apply edits proposed by an LLM safely: parse, confine, apply atomically, roll back.

A step uses it as::

    edits = parse_edits(answer)                  # or edits_from_inline(step.edits)
    plan = plan_edits(edits, root, allow_paths=step.allow_paths)   # checks, writes nothing
    txn = apply_plan(plan)                       # atomic; rolls itself back on failure
    ...                                          # verify (the apply step kind runs it)
    txn.rollback()                               # byte for byte, mode bits too
"""

from __future__ import annotations

from llm_mux.apply.confine import PathRefused
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
from llm_mux.apply.matching import MatchError
from llm_mux.apply.patch import FileChange, Plan, apply_edits, apply_plan, plan_edits
from llm_mux.apply.rollback import RollbackError, Snapshot, Transaction

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
    "apply_edits",
    "apply_plan",
    "edits_from_inline",
    "parse_edits",
    "plan_edits",
]
