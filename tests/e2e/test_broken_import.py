"""A module that fails to import fails loudly: it is never hidden or reported as missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.fakes.wf_project import write_workflow

# Runs the real entry point with one of our modules made unimportable.
PROBE = """
import sys
sys.modules[{module!r}] = None  # importing it now raises ImportError
from llm_mux.cli.main import entry
entry({args!r})
"""


def run_broken(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = PROBE.format(module=module, args=list(args))
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_a_command_that_fails_to_import_is_still_listed() -> None:
    proc = run_broken("llm_mux.cli.ask_cmd", "--help")
    assert proc.returncode == 0
    assert "  ask " in proc.stdout


def test_a_command_that_fails_to_import_says_so() -> None:
    proc = run_broken("llm_mux.cli.ask_cmd", "ask", "x", "hi")
    assert proc.returncode == 1
    assert "no such command" not in proc.stderr
    assert "internal error: ModuleNotFoundError" in proc.stderr
    assert "llm_mux.cli.ask_cmd" in proc.stderr


def test_a_step_kind_that_fails_to_import_says_so() -> None:
    write_workflow(Path.cwd(), "wf", '[[steps]]\nname = "s"\ntype = "shell"\nrun = "echo hi"\n')
    proc = run_broken("llm_mux.workflow.steps.shell", "run", "wf")
    assert proc.returncode == 1
    assert "not available in this installation" not in proc.stderr
    assert "ModuleNotFoundError" in proc.stderr and "llm_mux.workflow.steps.shell" in proc.stderr
