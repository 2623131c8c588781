"""The public entry points: find, check and run a workflow from Python or the CLI.

``run_workflow`` is what ``llm_mux.run_workflow`` is. Everything ``llm-mux run`` does is
reachable here; the CLI only adds rendering and exit codes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from llm_mux.values import Value, replace
from llm_mux.workflow.model import Issue, Workflow, parse_workflow
from llm_mux.workflow.runner import RunOptions
from llm_mux.workflow.validate import Report, check

if TYPE_CHECKING:
    from llm_mux.config import Config, Team
    from llm_mux.config.loader import ConfigFiles
    from llm_mux.workflow.results import RunResult
    from llm_mux.workflow.validate import Plan

P = ParamSpec("P")
R = TypeVar("R")
MiB = 1024 * 1024
OUTPUT_DIR_PREFIX = "llm-mux-"


class Prepared(Value, frozen=False):
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
    """Run a prepared workflow; raises :class:`WorkflowInvalid` (exit 2) before any step.

    Every run is recorded in the runs ledger of its memory database (``options.run_id``
    names it); ``options.resume`` runs a recorded run again, reusing what it finished.
    """

    from llm_mux.workflow.context import base_context
    from llm_mux.workflow.runner import Runner, Services

    options = options or RunOptions()
    workflow = prepared.workflow
    config = prepared.config.with_roles(workflow.roles)
    detected, eco_context = _ecosystem(prepared)
    store = _store(detected, config.defaults.memory_url)
    resumed = await _resumed(store, workflow.name, options, args)
    plan, values = prepared.runnable(resumed.args if resumed else args)
    run_id = resumed.id if resumed else (options.run_id or _new_run_id())
    journal = await _journal(prepared, config, store, run_id, values, detected, resumed)
    options = replace(options, journal=journal)
    memory = options.memory if options.memory is not None else _reader(detected, store)
    team = _team_value(prepared.team)
    base = base_context(workflow, values, team=team, ecosystem=eco_context, memory=memory)
    services = Services(
        project_dir=prepared.project_dir,
        config=config,
        team=prepared.team,
        max_output=config.defaults.max_output_mb * MiB,
        ask=options.ask,
        ecosystem=detected,
        listener=options.listener,
    )
    if journal is not None:
        journal.start()
    try:
        result = await Runner(workflow, plan, services, base, options).run()
    except BaseException:
        if journal is not None:
            journal.stop()
        raise
    result.warnings = prepared.warnings
    result.run_id = run_id
    if journal is not None:
        summary = {name: step.status for name, step in result.steps.items()}
        await journal.finish(result.success, result.duration_ms, result.error, summary)
    return result


def _store(detected: Any, memory_url: str | None) -> Any:
    """The memory database of the run's ecosystem (``default`` outside any)."""
    from llm_mux.memory import MemoryStore

    return MemoryStore.configured(getattr(detected, "name", None), memory_url)


def _reader(detected: Any, store: Any) -> Any:
    """The read-only ``memory`` template value for the run's ecosystem (``default`` outside)."""
    from llm_mux.memory import MemoryReader

    return MemoryReader(store, getattr(detected, "name", None))


def _new_run_id() -> str:
    from llm_mux.workflow.run_ids import new_run_id

    return new_run_id()


async def _resumed(
    store: Any, workflow: str, options: RunOptions, args: Mapping[str, str] | None
) -> Any:
    """The recorded run ``options.resume`` names, or None for a fresh run."""
    if not options.resume:
        return None
    from llm_mux.errors import UsageError
    from llm_mux.workflow.run_ids import resumed_run

    if args:
        raise UsageError("--resume runs again with the recorded arguments; give no NAME=value")
    return await asyncio.to_thread(resumed_run, store, workflow, options.resume)


async def _journal(
    prepared: Prepared,
    config: Config,
    store: Any,
    run_id: str,
    values: Mapping[str, str],
    detected: Any,
    resumed: Any,
) -> Any:
    """Claim the run in the ledger; None when it cannot be recorded (warned once)."""
    from llm_mux.workflow.resume import resolved_backends
    from llm_mux.workflow.run_ids import begin

    workflow = prepared.workflow
    backends = {s.name: resolved_backends(s, config, prepared.team) for s in workflow.steps}
    return await asyncio.to_thread(
        lambda: begin(
            store,
            workflow=workflow.name,
            run_id=run_id,
            args=values,
            resuming=resumed is not None,
            ecosystem=getattr(detected, "name", None),
            project=getattr(detected, "project", None),
            project_dir=prepared.project_dir,
            backends=backends,
        )
    )


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


def _blocking(run: Callable[P, Coroutine[Any, Any, R]], name: str, doc: str) -> Callable[P, R]:
    """``run`` as a plain call on a fresh event loop, with the same signature, so the
    synchronous and the async entry point cannot drift apart."""

    @functools.wraps(run)
    def blocking(*args: P.args, **kwargs: P.kwargs) -> R:
        from llm_mux import runtime

        return runtime.run(lambda: run(*args, **kwargs))

    blocking.__name__ = blocking.__qualname__ = name
    blocking.__doc__ = doc
    return blocking


run_workflow = _blocking(
    arun_workflow,
    "run_workflow",
    """Run ``workflow`` to completion on a fresh event loop and return its :class:`RunResult`.

    Ctrl-C (SIGINT/SIGTERM/SIGHUP) stops every step and child process and raises
    :class:`~llm_mux.errors.Interrupted`. A failed run is a result with ``success=False``.
    """,
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
    fd, path = _new_file(directory, f"{safe}-{stamp}-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(redact(text))
    return path


def _new_file(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new 0600 file with a random name (what ``tempfile.mkstemp`` does, without
    importing tempfile, which loads shutil and three compression modules)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = directory / f"{prefix}{os.urandom(5).hex()}.txt"
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free file name in {directory}")


def _private_dir() -> Path:
    """``$TMPDIR/llm-mux-<uid>``, created 0700; a fresh private dir if that one is not ours."""
    base = _temp_root()
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
    import tempfile

    return Path(tempfile.mkdtemp(prefix=OUTPUT_DIR_PREFIX))


def _temp_root() -> Path:
    """The first usable of ``$TMPDIR``, ``$TEMP``, ``$TMP``, ``/tmp``, ``/var/tmp``,
    ``/usr/tmp`` (``tempfile.gettempdir``'s order), else tempfile's own answer."""
    names = [os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")]
    for name in [*names, "/tmp", "/var/tmp", "/usr/tmp"]:
        if name and Path(name).is_dir() and os.access(name, os.W_OK | os.X_OK):
            return Path(name).absolute()
    import tempfile

    return Path(tempfile.gettempdir())
