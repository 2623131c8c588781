"""Start-up stays fast: --version and --help import none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx2", "pydantic", "jinja2", "rich", "jsonschema", "tenacity", "asyncio")

PROBE = """
import sys
from llm_mux.cli.main import entry
sys.argv = ["llm-mux", *{args!r}]
try:
    entry()
except SystemExit:
    pass
loaded = sorted(m for m in {heavy!r} if m in sys.modules)
sys.stderr.write("LOADED=" + ",".join(loaded) + "\\n")
"""


def loaded_modules(*args: str) -> list[str]:
    code = PROBE.format(args=list(args), heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("LOADED="))
    return [m for m in line.removeprefix("LOADED=").split(",") if m]


def test_version_imports_nothing_heavy() -> None:
    assert loaded_modules("--version") == []


def test_help_imports_nothing_heavy() -> None:
    assert loaded_modules("--help") == []


def test_subcommand_help_imports_nothing_heavy() -> None:
    assert loaded_modules("roles", "--help") == []
