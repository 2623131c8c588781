"""The README's first command, exactly as written, in a fresh copy of the repository.

It creates a virtual environment, installs llm-mux with the local model, and runs the offline
demo: a real model in a parallel role, a fallback after a rate limit, a fix that fails verify
and is rolled back, facts stored in memory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

REAL_HOME = Path(os.environ.get("HOME", "/root"))


def first_command() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1]
    match = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert match is not None, "the README lost its first command"
    return match.group(1).strip()


def copy_repository(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = REPO / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


@pytest.mark.network  # pip installs from the package index: only in .ci/run
@pytest.mark.timeout(900)
def test_readme_first_command_runs_the_demo(tmp_path: Path, isolated_home: Path) -> None:
    repo = tmp_path / "fresh-clone"
    copy_repository(repo)
    calc = (repo / "examples" / "demo" / "calc.py").read_bytes()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_CACHE_DIR"] = os.environ.get("PIP_CACHE_DIR", str(REAL_HOME / ".cache" / "pip"))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = subprocess.run(
        ["bash", "-c", first_command()],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "llm-mux demo: what happened" in out
    assert "reviewer + explainer" in out
    assert "answered by backup" in out
    assert "verify failed, edit rolled back, calc.py unchanged" in out
    assert "stored 2 facts" in out
    assert (repo / "examples" / "demo" / "calc.py").read_bytes() == calc
    assert (isolated_home / ".config" / "llm-mux" / "memory" / "default.db").exists()
