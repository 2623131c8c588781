"""A rollback that fails while the run is interrupted is reported, never printed aside.

The failure cannot be raised (the cancellation must go on), so it reaches the renderer as
an event and the step's result keeps it: in the console view and in the JSON document.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from llm_mux import process
from llm_mux.workflow.api import arun_workflow
from llm_mux.workflow.runner import RunOptions, StepEvent
from tests.fakes.fixtures import make_config
from tests.fakes.wf_project import document, interrupt, start, wait_for_file, write_workflow

# The verify puts a directory where the edited file must go back, then hangs.
VERIFY = "rm f.txt; mkdir f.txt; echo v > {marker}; sleep 30"


def apply_workflow(marker: Path) -> str:
    return (
        '[[steps]]\nname = "apply"\ntype = "apply"\n'
        'edits = [{ path = "f.txt", old = "one", new = "two" }]\n'
        f'verify = "{VERIFY.format(marker=marker)}"\n'
    )


async def test_cancelled_rollback_failure_is_an_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "verifying"
    root = tmp_path / "proj"
    write_workflow(root, "wf", apply_workflow(marker))
    (root / "f.txt").write_text("one\n")
    events: list[StepEvent] = []
    config: Any = make_config({"m": {"type": "mock", "response": "x"}})
    options = RunOptions(listener=events.append)
    task = asyncio.create_task(arun_workflow("wf", config=config, cwd=root, options=options))
    for _ in range(2000):
        if marker.exists() and process.live_group_count():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    failed = [e for e in events if e.step == "apply" and e.state == "failed"]
    assert len(failed) == 1
    assert "rollback could not restore everything" in failed[0].detail
    assert capsys.readouterr().err == ""


def test_interrupted_json_run_keeps_the_rollback_failure(tmp_path: Path) -> None:
    marker = tmp_path / "verifying"
    write_workflow(Path.cwd(), "wf", apply_workflow(marker))
    (Path.cwd() / "f.txt").write_text("one\n")
    proc = start(["run", "wf", "--output", "json"], Path.cwd())
    wait_for_file(marker)
    _elapsed, out, err = interrupt(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    step = document(out)["steps"]["apply"]
    assert step["status"] == "cancelled"
    assert step["error"].startswith("cancelled: interrupted by SIGINT; ")
    assert "rollback could not restore everything" in step["error"]
    assert "llm-mux: step" not in err
