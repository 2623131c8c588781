"""The public Python API: ``llm_mux.__all__`` is pinned, and each entry does its job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import llm_mux
from llm_mux.errors import ConfigError, InvalidInput

PUBLIC = ["__version__", "load_config", "run_workflow"]

CONFIG = """
[backends.fake]
type = "mock"
echo = true

[roles.analyzer]
backends = ["fake"]
"""

WORKFLOW = """
name = "review"

[args.topic]
required = true

[[steps]]
name = "list"
type = "shell"
run = "printf 'a\\\\nb\\\\n'"

[[steps]]
name = "ask"
type = "query"
role = "analyzer"
prompt = "Review {{ args.topic }}: {{ steps.list.output | lines | join(',') }}"
depends_on = ["list"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".llm-mux" / "workflows").mkdir(parents=True)
    (root / ".llm-mux" / "config.toml").write_text(CONFIG, encoding="utf-8")
    (root / ".llm-mux" / "workflows" / "review.toml").write_text(WORKFLOW, encoding="utf-8")
    return root


def test_all_is_pinned() -> None:
    assert llm_mux.__all__ == PUBLIC
    namespace: dict[str, object] = {}
    exec("from llm_mux import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC)


def test_every_public_name_resolves() -> None:
    from llm_mux._version import __version__
    from llm_mux.config import load_config
    from llm_mux.workflow.api import run_workflow

    assert llm_mux.__version__ == __version__
    assert llm_mux.load_config is load_config
    assert llm_mux.run_workflow is run_workflow
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = llm_mux.nope  # type: ignore[attr-defined]


def test_run_workflow_takes_what_arun_workflow_takes() -> None:
    import inspect

    from llm_mux.workflow.api import arun_workflow

    assert inspect.signature(llm_mux.run_workflow) == inspect.signature(arun_workflow)
    assert list(inspect.signature(llm_mux.run_workflow).parameters)[:2] == ["workflow", "args"]
    assert llm_mux.run_workflow.__name__ == "run_workflow"
    assert "Interrupted" in (llm_mux.run_workflow.__doc__ or "")


def test_importing_the_package_is_cheap() -> None:
    heavy = ("pydantic", "httpx2", "jinja2", "rich", "asyncio", "click")
    code = f"import llm_mux, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_config_merges_the_project_and_an_explicit_file(project: Path, tmp_path: Path) -> None:
    config = llm_mux.load_config(cwd=project)
    assert list(config.backends) == ["fake"] and config.backends["fake"].kind == "mock"
    assert config.roles["analyzer"].backends == ["fake"]
    assert config.project_root == project
    extra = tmp_path / "extra.toml"
    extra.write_text('[roles.analyzer]\nbackends = ["fake"]\nexecution = "fallback"\n')
    merged = llm_mux.load_config(extra, cwd=project)
    assert merged.roles["analyzer"].execution == "fallback"
    assert merged.sources[-1] == extra


def test_load_config_raises_a_located_config_error(project: Path) -> None:
    (project / ".llm-mux" / "config.toml").write_text('[backends.fake]\ntype = "mock"\nech = 1\n')
    with pytest.raises(ConfigError) as caught:
        llm_mux.load_config(cwd=project)
    assert caught.value.exit_code == 2
    assert "unknown key 'ech' in [backends.fake]" in caught.value.format()
    assert "did you mean 'echo'" in caught.value.format()


def test_run_workflow_returns_the_result(project: Path) -> None:
    result = llm_mux.run_workflow("review", {"topic": "x.py"}, cwd=project)
    assert result.success and result.error is None
    assert result.output == "Review x.py: a,b"
    assert [s.status for s in result.steps.values()] == ["success", "success"]
    assert result.steps["ask"].backend == "fake"
    document = result.document()
    assert document["workflow"] == "review" and document["steps"]["list"]["output"] == "a\nb"


def test_run_workflow_reports_a_failed_step_as_a_result(project: Path) -> None:
    path = project / ".llm-mux" / "workflows" / "review.toml"
    path.write_text(WORKFLOW.replace("printf 'a\\\\nb\\\\n'", "exit 3"), encoding="utf-8")
    result = llm_mux.run_workflow("review", {"topic": "x"}, cwd=project)
    assert not result.success
    assert result.steps["list"].status == "failed" and result.steps["list"].exit_code == 3
    assert result.steps["ask"].skipped


def test_run_workflow_raises_on_invalid_input(project: Path) -> None:
    with pytest.raises(InvalidInput, match="topic"):
        llm_mux.run_workflow("review", cwd=project)
    with pytest.raises(InvalidInput, match="unknown workflow 'nope'"):
        llm_mux.run_workflow("nope", cwd=project)
