"""Start-up stays fast: each command imports only what it needs.

Each probe runs the real entry point in a fresh interpreter and reports which of the heavy
modules it loaded; the lists below are the budget of each command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.server import FakeLLMServer

HEAVY = (
    "httpx2",
    "pydantic",
    "jinja2",
    "rich",
    "jsonschema",
    "tenacity",
    "asyncio",
    "importlib.metadata",
    "sqlite3",
)

PROBE = """
import json, sys
import ssl_probe
from llm_mux.cli.main import entry
sys.argv = ["llm-mux", *{args!r}]
code = None
try:
    entry()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in {heavy!r} if m in sys.modules)
report = {{"loaded": loaded, "code": code, "ssl_contexts": ssl_probe.count()}}
sys.stderr.write("PROBE=" + json.dumps(report) + "\\n")
"""

# Counts the SSL contexts that load CA certificates (the costly part of building one).
SSL_PROBE = """
import ssl
_loads = []


def count():
    return len(_loads)


def _counting(method):
    def counted(self, *args, **kwargs):
        _loads.append(method.__name__)
        return method(self, *args, **kwargs)

    return counted


for _name in ("load_verify_locations", "load_default_certs", "set_default_verify_paths"):
    setattr(ssl.SSLContext, _name, _counting(getattr(ssl.SSLContext, _name)))
"""


def probe(tmp_path: Path, *args: str) -> dict[str, object]:
    (tmp_path / "ssl_probe.py").write_text(SSL_PROBE)
    code = PROBE.format(args=list(args), heavy=HEAVY)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    line = next((x for x in proc.stderr.splitlines() if x.startswith("PROBE=")), None)
    assert line is not None, proc.stderr
    report: dict[str, object] = json.loads(line.removeprefix("PROBE="))
    return report


def loaded_modules(tmp_path: Path, *args: str) -> list[str]:
    report = probe(tmp_path, *args)
    assert report["code"] in (0, None), report
    loaded = report["loaded"]
    assert isinstance(loaded, list)
    return loaded


@pytest.fixture
def project(llm_server: FakeLLMServer) -> Path:
    """65 backends of every type, one role and a one-step workflow, in the cwd."""
    lines = ["[backends.B]", f'command = "{llm_server.url}/v1"', 'model = "m"']
    for i in range(64):
        lines += [f"[backends.b{i}]", f'command = "tool{i}"']
    lines += ["[roles.quick]", 'backends = ["B"]']
    workflows = Path.cwd() / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    (workflows.parent / "config.toml").write_text("\n".join(lines) + "\n")
    step = '[[steps]]\nname = "q"\ntype = "query"\nrole = "quick"\nprompt = "hi"\n'
    (workflows / "one.toml").write_text(step)
    return Path.cwd()


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    assert loaded_modules(tmp_path, "--version") == []


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    assert loaded_modules(tmp_path, "--help") == []


def test_subcommand_help_imports_nothing_heavy(tmp_path: Path) -> None:
    assert loaded_modules(tmp_path, "roles", "--help") == []


def test_backends_validates_without_pydantic_and_prints_without_rich(
    tmp_path: Path, project: Path
) -> None:
    # stdout is a pipe here: the table is plain columns, drawn by rich only on a terminal
    assert loaded_modules(tmp_path, "backends") == []


def test_backends_json_imports_nothing_heavy(tmp_path: Path, project: Path) -> None:
    assert loaded_modules(tmp_path, "backends", "--output", "json") == []


def test_ask_over_plain_http_needs_no_http_library(tmp_path: Path, project: Path) -> None:
    report = probe(tmp_path, "ask", "B", "hi")
    assert report["code"] in (0, None), report
    assert report["loaded"] == ["asyncio"]
    assert report["ssl_contexts"] == 0


def test_run_of_a_plain_prompt_imports_no_jinja(tmp_path: Path, project: Path) -> None:
    report = probe(tmp_path, "run", "one", "-q")
    assert report["code"] in (0, None), report
    assert report["loaded"] == ["asyncio", "sqlite3"]
    assert report["ssl_contexts"] == 0


def test_run_of_a_template_still_renders_it(tmp_path: Path, project: Path) -> None:
    (project / ".llm-mux" / "workflows" / "two.toml").write_text(
        '[[steps]]\nname = "s"\ntype = "shell"\nrun = "echo {{ 40 + 2 }}"\n'
    )
    report = probe(tmp_path, "run", "two", "-q")
    assert report["code"] in (0, None), report
    assert "jinja2" in report["loaded"]  # type: ignore[operator]
