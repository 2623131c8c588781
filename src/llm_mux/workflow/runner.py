"""Running a validated workflow: the DAG scheduled concurrently on one event loop.

Around each step kind the runner owns the shared rules of SPEC §2: ``if`` (false → skipped,
dependents still run), ``for_each`` (items concurrent up to ``max_parallel``, results in
input order), ``retries`` with ``retry_delay``, the step ``timeout`` (bounding the retries
too), ``continue_on_error``, failure propagation (running steps cancelled, the rest
skipped), the workflow ``timeout`` and interruption (partial results kept).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mux.errors import InvalidInput, LlmMuxError
from llm_mux.logs import get_logger
from llm_mux.values import Value, field
from llm_mux.workflow.context import StepsView, with_item, with_steps
from llm_mux.workflow.dag import Scheduler
from llm_mux.workflow.durations import format_ms
from llm_mux.workflow.results import (
    Outputs,
    RunResult,
    StepResult,
    set_json,
    set_request,
    skipped_result,
)
from llm_mux.workflow.steps import get_kind
from llm_mux.workflow.steps.base import Ask, StepContext, StepFailed, StepOutput

if TYPE_CHECKING:
    from llm_mux.config import Config, Team
    from llm_mux.ecosystems import Detected
    from llm_mux.events import BackendEvent
    from llm_mux.roles import Multiplexer
    from llm_mux.workflow.model import Step, Workflow
    from llm_mux.workflow.validate import Plan

log = get_logger("workflow")
_OUTPUT_GRACE_S = 1.0  # the least time the output template gets when a deadline applies


class StepEvent(Value):
    """A step (or, with ``backend`` set, one backend inside a query step) changed state."""

    step: str
    state: str
    elapsed_ms: int = 0
    detail: str = ""
    backend: str | None = None
    item: int | None = None


Listener = Callable[[StepEvent], None]


def default_concurrency() -> int:
    """Independent steps running at once unless told otherwise: twice the CPU count."""
    return 2 * (os.cpu_count() or 1)


class RunOptions(Value, frozen=False):
    """How to run: concurrency, progress listener, interactive input."""

    concurrency: int | None = None
    listener: Listener | None = None
    ask: Ask | None = None
    memory: Any = None  # the ``memory`` template value (the knowledge-base reader)
    journal: Any = None  # the runs ledger of a recorded run (``workflow.resume.Journal``)
    run_id: str | None = None  # the id to record the run under (default: a new one)
    resume: str | None = None  # a recorded run to resume: its id, or ``last``


class Services(Value, frozen=False):
    """Run-wide services handed to step kinds; one Multiplexer per run, made on first use."""

    project_dir: Path
    config: Config
    team: Team | None
    max_output: int
    ask: Ask | None = None
    ecosystem: Detected | None = None
    listener: Listener | None = None
    extras: dict[str, Any] = field(factory=dict)
    warnings: dict[str, list[str]] = field(factory=dict)
    _mux: Multiplexer | None = None
    _lock: asyncio.Lock = field(factory=asyncio.Lock)

    async def multiplexer(self) -> Multiplexer:
        async with self._lock:
            if self._mux is None:
                from llm_mux.roles import Multiplexer

                mux = Multiplexer(self.config, team=self.team, cwd=self.project_dir)
                await mux.__aenter__()
                self._mux = mux
            return self._mux

    def backend_listener(
        self, step: str, item: int | None = None
    ) -> Callable[[BackendEvent], None]:
        def forward(event: BackendEvent) -> None:
            if self.listener is not None:
                self.listener(
                    StepEvent(
                        step, event.state, event.elapsed_ms, event.detail, event.backend, item
                    )
                )

        return forward

    def warn(self, step: str, message: str) -> None:
        self.warnings.setdefault(step, []).append(message)
        if self.listener is not None:
            self.listener(StepEvent(step, "failed", 0, message))

    async def close(self) -> None:
        mux, self._mux = self._mux, None
        if mux is not None:
            await mux.__aexit__(None, None, None)


class Runner:
    """One run of one workflow. Create, ``await run()``, read the :class:`RunResult`."""

    def __init__(
        self,
        workflow: Workflow,
        plan: Plan,
        services: Services,
        base_context: dict[str, Any],
        options: RunOptions | None = None,
    ) -> None:
        self.workflow, self.plan, self.services = workflow, plan, services
        self.base = base_context
        self.options = options or RunOptions()
        self.results: dict[str, StepResult] = {}
        self._started: dict[str, float] = {}
        self._stopped_by: StepResult | None = None
        self._ran: set[str] = set()  # steps run this time (not taken from a recorded run)
        self._rendering: dict[str, str] = {}  # label -> template field being rendered

    # --- the run ---

    async def run(self) -> RunResult:
        started = time.monotonic()
        limit = self.options.concurrency or default_concurrency()
        scheduler = Scheduler(self.plan.graph, self._run_node, limit=limit)
        error, signum = None, None
        try:
            error = await self._schedule(scheduler)
        except asyncio.CancelledError:
            signum = _interrupting_signal()
            if signum is None:
                raise
            _uncancel()
            error = f"interrupted by {signal.Signals(signum).name}"
        finally:
            await self.services.close()
        return await self._finish(started, error, signum)

    async def _schedule(self, scheduler: Scheduler) -> str | None:
        timeout = self.workflow.timeout
        try:
            async with asyncio.timeout(timeout / 1000 if timeout else None):
                await scheduler.run()
        except TimeoutError:
            return f"workflow timed out after {format_ms(timeout or 0)}"
        if self._stopped_by is not None:
            return f"step '{self._stopped_by.name}' failed: {self._stopped_by.error}"
        return None

    async def _finish(self, started: float, error: str | None, signum: int | None) -> RunResult:
        self._fill_unfinished(error or "cancelled")
        output, output_error = await self._final_output(started, stopped=error is not None)
        error = error or output_error
        return RunResult(
            workflow=self.workflow.name,
            success=error is None,
            duration_ms=_ms_since(started),
            output=output,
            error=error,
            steps={s.name: self.results[s.name] for s in self.plan.steps},
            interrupted=signum,
        )

    def _fill_unfinished(self, reason: str) -> None:
        now = time.monotonic()
        for step in self.plan.steps:
            if step.name in self.results:
                continue
            if step.name in self._started:
                result = StepResult(step.name, "cancelled")
                note = self._rendering_note(step.name)
                result.error = "; ".join([f"cancelled: {reason}{note}", *self._warnings(step.name)])
                result.duration_ms = _ms_since(self._started[step.name], now)
                self._emit(step.name, "cancelled", result.duration_ms, result.error)
            else:
                result = skipped_result(step.name)
            self.results[step.name] = result

    def _warnings(self, step: str) -> list[str]:
        return self.services.warnings.get(step, [])

    def _rendering_note(self, name: str) -> str:
        """`` while rendering its FIELD template`` when the step was stopped mid-render."""
        items = self._rendering.items()
        fields = [f for label, f in items if label == name or label.startswith(name + "[")]
        return f" while rendering its {fields[0]} template" if fields else ""

    async def _final_output(self, started: float, *, stopped: bool) -> tuple[str, str | None]:
        ran = [self.results[s.name] for s in self.plan.steps]
        ran = [r for r in ran if r.status in ("success", "failed")]
        fallback = ran[-1].output if ran else ""
        if self.workflow.output is None:
            return fallback, None
        try:
            return await self._render_output(started, stopped), None
        except TimeoutError:
            return fallback, "output template failed: timed out while rendering"
        except LlmMuxError as exc:
            return fallback, f"output template failed: {exc.message}"
        except asyncio.CancelledError:
            if _interrupting_signal() is None:
                raise
            _uncancel()
            return fallback, "output template failed: interrupted while rendering"

    async def _render_output(self, started: float, stopped: bool) -> str:
        """The workflow's ``output`` template, within what is left of the workflow timeout.

        It always gets a short grace, and no more once the run is stopped, so a runaway
        template cannot keep a stopped run alive.
        """
        from llm_mux.templates import render
        from llm_mux.templates.budget import render_off_loop

        template = self.workflow.output or ""
        context = with_steps(
            self.base, StepsView(self.results, self.plan.index, self.plan.everything)
        )
        timeout = self.workflow.timeout
        loop_deadline = None
        if timeout or stopped:
            deadline = max(started + (timeout or 0) / 1000, time.monotonic() + _OUTPUT_GRACE_S)
            loop_deadline = asyncio.get_running_loop().time() + deadline - time.monotonic()
        async with asyncio.timeout_at(loop_deadline):
            return await render_off_loop(
                lambda: render(template, context, where="output"),
                max_output=self.services.max_output,
            )

    # --- one step ---

    async def _run_node(self, node: int) -> bool:
        step = self.plan.steps[node]
        self._started[step.name] = started = time.monotonic()
        result = await self._execute(step, node)
        result.duration_ms = _ms_since(started)
        self.results[step.name] = result
        self._record(step.name, result)
        state = {"success": "done"}.get(result.status, result.status)
        self._emit(step.name, state, result.duration_ms, result.error or "")
        log.debug("step %s: %s in %d ms", step.name, state, result.duration_ms)
        if result.status == "failed" and not self._tolerates_failure(step):
            self._stopped_by = result
            return False
        return True

    # --- resumed runs (see workflow.resume) ---

    async def _reuse(
        self, step: Step, context: Mapping[str, Any], item: int = -1
    ) -> StepResult | None:
        """A recorded result to reuse, unless a dependency ran again (then this step must)."""
        journal = self.options.journal
        if journal is None:
            return None
        fresh_inputs = any(name in self._ran for name in step.depends_on)
        label = step.name if item < 0 else f"{step.name}[{item + 1}]"

        def noting(field: str) -> None:  # called from the render's thread
            self._rendering[label] = field

        try:
            reused: StepResult | None = await journal.reuse(
                step, context, item, allow=not fresh_inputs, noting=noting
            )
        except Exception:
            self._rendering.pop(label, None)
            raise
        # cancelled: the label stays, so the step's error names the template (as StepContext)
        self._rendering.pop(label, None)
        return reused

    def _record(self, step: str, result: StepResult, item: int = -1) -> None:
        if self.options.journal is not None:
            self.options.journal.record(step, result, item)

    def _tolerates_failure(self, step: Step) -> bool:
        if step.continue_on_error is not None:
            return step.continue_on_error
        return self.workflow.continue_on_error

    async def _execute(self, step: Step, node: int) -> StepResult:
        steps = StepsView(self.results, self.plan.index, self.plan.ancestors[node])
        context = with_steps(self.base, steps)
        try:
            if step.when is not None and not self._condition(step, context):
                return skipped_result(step.name)
            return await self._bounded(step, context)
        except StepFailed as exc:
            return _failed(step.name, str(exc.message), exc.partial)

    def _condition(self, step: Step, context: Mapping[str, Any]) -> bool:
        from llm_mux.templates import evaluate

        try:
            return bool(evaluate(step.when or "", context, where="if"))
        except LlmMuxError as exc:
            raise StepFailed(exc.message, retryable=False) from None

    async def _bounded(self, step: Step, context: dict[str, Any]) -> StepResult:
        if step.timeout is None:
            return await self._reused_or_run(step, context)
        try:
            async with asyncio.timeout(step.timeout / 1000):
                return await self._reused_or_run(step, context)
        except TimeoutError:
            note = self._rendering_note(step.name)
            raise StepFailed(f"timed out after {format_ms(step.timeout)}{note}") from None

    async def _reused_or_run(self, step: Step, context: dict[str, Any]) -> StepResult:
        """The recorded result of a resumed run, else the step run now. Hashing the step's
        inputs renders its templates, so it counts against the step's timeout too."""
        reused = await self._reuse(step, context)
        if reused is not None:
            return reused
        self._ran.add(step.name)
        self._emit(step.name, "running", 0)
        return await self._body(step, context)

    async def _body(self, step: Step, context: dict[str, Any]) -> StepResult:
        if step.for_each is None:
            return await self._attempts(step, context, step.name, None)
        return await self._for_each(step, context)

    async def _attempts(
        self, step: Step, context: dict[str, Any], label: str, item: int | None
    ) -> StepResult:
        kind = get_kind(step)
        failure = StepFailed("not run")
        for attempt in range(step.retries + 1):
            if attempt:
                self._emit(step.name, "retrying", 0, f"attempt {attempt + 1}: {failure}", item)
                log.debug("step %s: retry %d after: %s", label, attempt, failure.message)
                await asyncio.sleep(step.retry_delay / 1000)
            ctx = StepContext(
                step, self.workflow, self.services, context, self.results, label, self._rendering
            )
            try:
                return _succeeded(label, await kind.run(ctx))
            except StepFailed as exc:
                failure = exc
            except LlmMuxError as exc:
                failure = StepFailed(exc.message, retryable=not isinstance(exc, InvalidInput))
            except (OSError, ValueError, RuntimeError) as exc:
                log.debug("step %s raised", label, exc_info=True)
                failure = StepFailed(f"{type(exc).__name__}: {exc}", retryable=False)
            if not failure.retryable:
                break
        return _failed(label, failure.message, failure.partial)

    # --- for_each ---

    async def _for_each(self, step: Step, context: dict[str, Any]) -> StepResult:
        """Items run by ``max_parallel`` workers taking the next index in input order.

        One task per worker, not per item: a list of 100,000 items costs 16 tasks, so a
        signal or a failure stops the step at once instead of unwinding 100,000 waiters.
        """
        items = self._items(step, context)
        results: list[StepResult] = [skipped_result("")] * len(items)
        pending = iter(range(len(items)))
        stop_on_failure = not self._tolerates_failure(step)
        stopped = False

        async def worker() -> None:
            nonlocal stopped
            for index in pending:
                label = f"{step.name}[{index + 1}]"
                if stopped:
                    result = skipped_result(label)
                else:
                    result = await self._item(step, context, items, index, label)
                    stopped = stopped or (result.status == "failed" and stop_on_failure)
                result.item = items[index]
                results[index] = result

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(step.parallel_items, len(items))):
                    group.create_task(worker())
        except BaseExceptionGroup as errors:  # a bug in one worker: report it, not the group
            raise errors.exceptions[0] from None
        return _combine(step.name, results)

    async def _item(
        self, step: Step, context: dict[str, Any], items: list[Any], index: int, label: str
    ) -> StepResult:
        started = time.monotonic()
        item_context = with_item(context, items[index], index, len(items))
        reused = await self._reuse(step, item_context, index)
        if reused is not None:
            return reused
        result = await self._attempts(step, item_context, label, index)
        result.duration_ms = _ms_since(started)
        self._record(step.name, result, index)
        return result

    def _items(self, step: Step, context: Mapping[str, Any]) -> list[Any]:
        from llm_mux.templates import evaluate

        try:
            value = evaluate(step.for_each or "", context, where="for_each")
        except LlmMuxError as exc:
            raise StepFailed(exc.message, retryable=False) from None
        if isinstance(value, str | bytes | Mapping) or value is None:
            kind = "nothing" if value is None else f"a {type(value).__name__}"
            raise StepFailed(
                f"for_each must give a list, but {step.for_each!r} gave {kind} "
                "(split text with | lines or | split(','))",
                retryable=False,
            )
        try:
            return list(value)
        except TypeError:
            raise StepFailed(
                f"for_each must give a list, not {type(value).__name__}", retryable=False
            ) from None

    def _emit(
        self, step: str, state: str, elapsed_ms: int, detail: str = "", item: int | None = None
    ) -> None:
        if self.options.listener is not None:
            self.options.listener(StepEvent(step, state, elapsed_ms, detail, None, item))


def _succeeded(label: str, out: StepOutput) -> StepResult:
    result = StepResult(label, "success", output=out.output)
    _fill(result, out)
    return result


def _failed(label: str, message: str, partial: StepOutput | None) -> StepResult:
    result = StepResult(label, "failed", output=partial.output if partial else "")
    if partial is not None:
        _fill(result, partial)
    result.error = message
    return result


def _fill(result: StepResult, out: StepOutput) -> None:
    if out.outputs is not None:
        result.outputs = Outputs(out.outputs, out.backends)
    result.backend = out.backend
    result.backends = list(out.backends)
    result.exit_code = out.exit_code
    result.usage = out.usage
    result.extra = dict(out.extra)
    if out.has_json:
        set_json(result, out.json)
    set_request(result, out.request)


def _combine(name: str, items: list[StepResult]) -> StepResult:
    """The step result of a for_each: outputs joined by newlines, items in input order."""
    ran = [r for r in items if not r.skipped]
    failed = [(i, r) for i, r in enumerate(items) if r.failed]
    result = StepResult(name, "failed" if failed else "success")
    result.output = "\n".join(r.output for r in ran)
    result.outputs = Outputs(r.output for r in ran)
    result.items = items
    result.backends = list(dict.fromkeys(b for r in ran for b in r.backends))
    result.backend = result.backends[0] if len(result.backends) == 1 else None
    if failed:
        index, first = failed[0]
        more = f" ({len(failed)} items failed)" if len(failed) > 1 else ""
        result.error = f"item {index + 1} ({_short(first.item)}): {first.error}{more}"
    return result


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ms_since(start: float, now: float | None = None) -> int:
    return int(((now if now is not None else time.monotonic()) - start) * 1000)


def _interrupting_signal() -> int | None:
    from llm_mux import runtime

    return runtime.interrupted_by()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
