"""The public entry points: find, check and run a workflow from Python or the CLI.

``run_workflow`` is what ``llm_mux.run_workflow`` is. Everything ``llm-mux run`` does is
reachable here; the CLI only adds rendering and exit codes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mux.errors import WorkflowError
from llm_mux.workflow.model import Issue, Workflow, parse_workflow
from llm_mux.workflow.runner import RunOptions
from llm_mux.workflow.validate import Report, check

if TYPE_CHECKING:
    from llm_mux.config import Config, Team
    from llm_mux.config.loader import ConfigFiles
    from llm_mux.workflow.results import RunResult
    from llm_mux.workflow.validate import Plan

MiB = 1024 * 1024
OUTPUT_DIR_PREFIX = "llm-mux-"


@dataclass
class Prepared:
    """A workflow found, parsed and checked against the config, ready to run."""

    workflow: Workflow
    report: Report
    config: Config
    team: Team | None
    project_dir: Path
    cwd: Path
    ecosystem_forced: str | None = None

    @property
    def warnings(self) -> list[Issue]:
        return self.report.warnings

    def runnable(self, args: Mapping[str, str] | None = None) -> tuple[Plan, dict[str, str]]:
        """The plan and the resolved args; raises (exit 2) when the run cannot start."""
        from llm_mux.workflow.context import resolve_args

        plan = self.report.raise_for_errors()
        _check_kinds(self.workflow)
        return plan, resolve_args(self.workflow, args or {})


def prepare(
    workflow: str | Path,
    *,
    config: Config | None = None,
    config_file: ConfigFiles = None,
    cwd: Path | None = None,
    team: str | None = None,
    ecosystem: str | None = None,
) -> Prepared:
    """Find ``workflow`` (a name or a path), parse it and run every static check.

    Errors in the workflow are in ``report`` (see :meth:`Report.raise_for_errors`); a
    missing workflow or a bad config raise at once.
    """
    from llm_mux.config import load_config
    from llm_mux.teams import detect_team, project_root
    from llm_mux.workflow.discover import find_workflow

    here = (cwd or Path.cwd()).resolve()
    path = find_workflow(str(workflow), here)
    parsed, issues = parse_workflow(path)
    if config is None:
        config = load_config(config_file, cwd=here)
    root = project_root(here)
    active = detect_team(config, root, team)
    report = check(parsed, issues, config, active)
    return Prepared(parsed, report, config, active, root, here, ecosystem)


async def run_prepared(
    prepared: Prepared,
    args: Mapping[str, str] | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Run a prepared workflow; raises :class:`WorkflowInvalid` (exit 2) before any step."""
    from llm_mux.workflow.context import base_context
    from llm_mux.workflow.runner import Runner, Services

    plan, values = prepared.runnable(args)
    workflow = prepared.workflow
    config = prepared.config.with_roles(workflow.roles)
    detected, eco_context = _ecosystem(prepared)
    memory = options.memory if options and options.memory is not None else _reader(detected)
    team = _team_value(prepared.team)
    base = base_context(workflow, values, team=team, ecosystem=eco_context, memory=memory)
    services = Services(
        project_dir=prepared.project_dir,
        config=config,
        team=prepared.team,
        max_output=config.defaults.max_output_mb * MiB,
        ask=options.ask if options else None,
        ecosystem=detected,
        listener=options.listener if options else None,
    )
    started = datetime.now(UTC)
    result = await Runner(workflow, plan, services, base, options).run()
    result.warnings = prepared.warnings
    if detected is not None:
        await _record_run(result, detected, started)
    return result


def _reader(detected: Any) -> Any:
    """The read-only ``memory`` template value for the run's ecosystem (``default`` outside)."""
    from llm_mux.memory import MemoryReader, MemoryStore

    name = getattr(detected, "name", None)
    return MemoryReader(MemoryStore.for_ecosystem(name), name)


async def _record_run(result: RunResult, detected: Any, started: datetime) -> None:
    """Record a ``workflow_runs`` row for a run inside an ecosystem; never fails the run."""
    from llm_mux.errors import StoreError
    from llm_mux.memory import MemoryStore

    steps = {name: step.status for name, step in result.steps.items()}
    try:
        await MemoryStore.for_ecosystem(detected.name).record_run_async(
            workflow=result.workflow,
            success=result.success,
            duration_ms=result.duration_ms,
            started_at=started,
            ecosystem=detected.name,
            project=detected.project,
            error=result.error,
            steps=steps,
        )
    except StoreError as exc:
        result.warnings = [*result.warnings, f"could not record the run: {exc.message}"]


async def arun_workflow(
    workflow: str | Path,
    args: Mapping[str, str] | None = None,
    *,
    config: Config | None = None,
    config_file: ConfigFiles = None,
    cwd: Path | None = None,
    team: str | None = None,
    ecosystem: str | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Find, check and run ``workflow`` with ``args`` on the running event loop."""
    prepared = prepare(
        workflow, config=config, config_file=config_file, cwd=cwd, team=team, ecosystem=ecosystem
    )
    return await run_prepared(prepared, args, options)


def run_workflow(
    workflow: str | Path,
    args: Mapping[str, str] | None = None,
    *,
    config: Config | None = None,
    config_file: ConfigFiles = None,
    cwd: Path | None = None,
    team: str | None = None,
    ecosystem: str | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Run ``workflow`` to completion on a fresh event loop and return its :class:`RunResult`.

    Ctrl-C (SIGINT/SIGTERM/SIGHUP) stops every step and child process and raises
    :class:`~llm_mux.errors.Interrupted`. A failed run is a result with ``success=False``.
    """
    from llm_mux import runtime

    return runtime.run(
        lambda: arun_workflow(
            workflow,
            args,
            config=config,
            config_file=config_file,
            cwd=cwd,
            team=team,
            ecosystem=ecosystem,
            options=options,
        )
    )


def _check_kinds(workflow: Workflow) -> None:
    from llm_mux.workflow.steps import available

    for step in workflow.steps:
        if not available(step.type):
            raise WorkflowError(
                f"step type '{step.type}' is not available in this installation",
                step=step.name,
                file=workflow.path,
            )


def _team_value(team: Team | None) -> Any:
    from llm_mux.teams import team_value

    return team_value(team)


def _ecosystem(prepared: Prepared) -> tuple[Any, Any]:
    from llm_mux.ecosystems import detect_ecosystem, ecosystem_context

    detected = detect_ecosystem(prepared.config.ecosystems, prepared.cwd, prepared.ecosystem_forced)
    return detected, ecosystem_context(detected)


def save_output(text: str, workflow: str) -> Path:
    """Save a run's final output (secrets masked) to a 0600 file in a private 0700 directory."""
    from llm_mux.secrets import redact

    directory = _private_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in workflow)[:60] or "run"
    fd, name = tempfile.mkstemp(prefix=f"{safe}-{stamp}-", suffix=".txt", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(redact(text))
    return Path(name)


def _private_dir() -> Path:
    """``$TMPDIR/llm-mux-<uid>``, created 0700; a fresh private dir if that one is not ours."""
    base = Path(tempfile.gettempdir())
    directory = base / f"{OUTPUT_DIR_PREFIX}{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        info = directory.lstat()
        if info.st_uid == os.getuid() and not directory.is_symlink():
            if info.st_mode & 0o777 != 0o700:
                directory.chmod(0o700)
            return directory
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=OUTPUT_DIR_PREFIX))
