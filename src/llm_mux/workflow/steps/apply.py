"""``type = "apply"``: apply the edits a step proposed (or inline ones), verify, roll back.

SPEC §4: the source step's answer (or the inline ``edits``) is parsed, every edit is checked
before anything is written, and the files are written atomically with their prior bytes
recorded. The verify command then runs in the project directory; when it fails the files
are restored byte for byte (unless ``rollback_on_failure = false`` on the last attempt). With
``verify_retries`` the source step's role is asked again with the verify output, and its new
answer gets the same treatment.

Apply steps of one run share one lock, held while files are changed, verified and restored
and released while a model answers, so no apply plans against, verifies or rolls back over
another one's half-done edits. Whatever interrupts an apply or a verify (an error, a step
timeout, Ctrl-C) restores the files before it propagates. Files are written on the event
loop thread on purpose: a write is never left running in a thread after a cancellation.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from llm_mux.errors import ApplyError, InvalidInput, LlmMuxError
from llm_mux.logs import get_logger
from llm_mux.workflow.steps.apply_checks import check_apply
from llm_mux.workflow.steps.apply_state import ERROR_TAIL, ApplyState
from llm_mux.workflow.steps.base import CheckEnv, StepContext, StepFailed, StepKind, StepOutput
from llm_mux.workflow.steps.verify import (
    VerifyCommand,
    VerifyResult,
    describe_exit,
    retry_prompt,
    tail,
    verify_command,
)

if TYPE_CHECKING:
    from llm_mux.apply import Edit, Transaction
    from llm_mux.workflow.model import ApplyStep, Step
    from llm_mux.workflow.results import QueryRequest, StepResult

LOCK_KEY = "apply.lock"
log = get_logger("apply")


def run_lock(services: Any) -> asyncio.Lock:
    """The one lock that serializes the apply steps of a run."""
    lock = services.extras.get(LOCK_KEY)
    if lock is None:
        lock = services.extras[LOCK_KEY] = asyncio.Lock()
    return cast(asyncio.Lock, lock)


class ApplyKind:
    """The apply step kind."""

    def check(self, step: ApplyStep, env: CheckEnv) -> list[tuple[str, str]]:
        return check_apply(step, env)

    async def run(self, ctx: StepContext[ApplyStep]) -> StepOutput:
        session = _Session(ctx)
        try:
            return await session.run()
        except StepFailed:
            raise
        except LlmMuxError as exc:
            retryable = not isinstance(exc, InvalidInput)
            raise session.failed(exc.format(), retryable=retryable) from exc
        finally:
            session.close()


class _Session:
    """One execution of an apply step: its attempts and what they did."""

    def __init__(self, ctx: StepContext[ApplyStep]) -> None:
        self.ctx, self.step = ctx, ctx.step
        self.state = ApplyState()
        self.lock = run_lock(ctx.services)
        self.answer = ""  # the text the current edits were parsed from
        self.source: StepResult | None = None
        self.verify: VerifyCommand | None = None

    def close(self) -> None:
        if self.verify is not None:
            self.verify.cleanup()

    def failed(self, message: str, *, retryable: bool = False) -> StepFailed:
        return StepFailed(message, partial=self.state.output(), retryable=retryable)

    # --- the attempts ---

    async def run(self) -> StepOutput:
        self.state.attempts = 1
        edits = self._first_edits()
        if edits is None:
            return self.state.output()
        self.verify = await verify_command(self.ctx, self.step)  # template errors before any write
        while True:
            last = self.state.attempts > self.step.verify_retries
            result = await self._attempt(edits, last=last)
            if result is None or result.ok:
                return self.state.output()
            if last:
                raise self._verify_failed(result)
            self.state.attempts += 1
            edits = await self._ask_again(result)

    async def _attempt(self, edits: list[Edit], *, last: bool) -> VerifyResult | None:
        """Apply, verify, and roll back a failure (kept only on the last attempt if asked)."""
        async with self.lock:
            txn = self._apply(edits)
            if not txn.applied and self.state.attempts == 1:
                self.state.note = "the edits change nothing" if edits else "no edits"
                return None
            result = await self._verify_guarded(txn)
            keep = last and not self.step.rollback_on_failure
            if result is not None and not result.ok and not keep:
                self._rollback(txn)
            return result

    def _apply(self, edits: list[Edit]) -> Transaction:
        from llm_mux.apply import apply_plan, plan_edits

        root = self.ctx.services.project_dir
        try:
            txn = apply_plan(plan_edits(edits, root, allow_paths=self.step.allow_paths))
        except ApplyError as exc:
            raise self.failed(self._attempt_prefix() + exc.format()) from exc
        self.state.wrote(txn.applied)
        log.debug("step %s: applied %s", self.ctx.label, ", ".join(txn.applied) or "nothing")
        return txn

    async def _verify_guarded(self, txn: Transaction) -> VerifyResult | None:
        """Verify; anything that stops it (Ctrl-C included) restores the files first."""
        if self.verify is None:
            return None
        try:
            result = await self.verify.run(self.ctx)
        except BaseException as exc:
            self._undo_after(txn, exc)
            raise
        self.state.verified, self.state.verify_output = result, result.output
        return result

    def _rollback(self, txn: Transaction) -> None:
        from llm_mux.apply import RollbackError

        try:
            txn.rollback()
        except RollbackError as exc:
            raise self.failed(exc.format()) from exc
        self.state.rolled_back = bool(txn.applied)

    def _undo_after(self, txn: Transaction, exc: BaseException) -> None:
        """Roll back on the way out of an interruption; never hide that it failed."""
        try:
            self._rollback(txn)
        except StepFailed as undo:
            if isinstance(exc, Exception):
                raise undo from exc
            name, label = self.ctx.step.name, self.ctx.label
            self.ctx.services.warn(
                name, undo.message if label == name else f"{label}: {undo.message}"
            )

    def _verify_failed(self, result: VerifyResult) -> StepFailed:
        attempts = self.state.attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        message = f"verify failed ({describe_exit(result)}){tries}; {_undone(self.state)}"
        if self.verify is not None:
            message += f"\n$ {self.verify.text.strip()}"
        output = tail(result.output.strip(), ERROR_TAIL)
        if output:
            message += f"\n{output}"
        return self.failed(message, retryable=self.state.rolled_back)

    # --- edits ---

    def _first_edits(self) -> list[Edit] | None:
        """Edits of the first attempt; None when the source was skipped (nothing to do)."""
        from llm_mux.apply import edits_from_inline

        if self.step.edits is not None:
            try:
                return edits_from_inline(self.step.edits)
            except ApplyError as exc:
                raise self.failed(f"edits: {exc.format()}") from exc
        source = self._source()
        if source.skipped:
            self.state.note = f"source step '{source.name}' was skipped"
            return None
        if source.failed:
            raise self.failed(f"source step '{source.name}' failed, so there are no edits")
        self.answer = source.output
        return self._parse(self.answer)

    def _source(self) -> StepResult:
        name = self.step.source_step or ""
        result = self.ctx.results.get(name)
        if result is None:
            raise self.failed(f"source step '{name}' has not run (add it to depends_on)")
        self.source = result
        return result

    def _parse(self, answer: str) -> list[Edit]:
        from llm_mux.apply import EditParseError, parse_edits

        try:
            return parse_edits(answer)
        except EditParseError as exc:
            where = f"output of step '{self.step.source_step}'"
            if self.state.attempts > 1:
                where = f"attempt {self.state.attempts}: the answer to the retry prompt"
            raise self.failed(f"{where}: {exc.format()}") from exc

    def _attempt_prefix(self) -> str:
        return f"attempt {self.state.attempts}: " if self.state.attempts > 1 else ""

    # --- asking again ---

    async def _ask_again(self, failed: VerifyResult) -> list[Edit]:
        """Send the source step's prompt with the failure; parse the new answer."""
        from llm_mux.workflow.results import query_request

        request = query_request(self.source) if self.source is not None else None
        if request is None:
            raise self.failed(
                f"verify_retries: step '{self.step.source_step}' cannot be asked again "
                "(only a query step can)"
            )
        prompt = await self._retry_prompt(request.prompt, failed.output)
        self.answer = await self._ask(request, prompt)
        return self._parse(self.answer)

    async def _retry_prompt(self, original: str, verify_output: str) -> str:
        template = self.step.verify_retry_prompt
        return await retry_prompt(self.ctx, template, original, self.answer, verify_output)

    async def _ask(self, request: QueryRequest, prompt: str) -> str:
        services = self.ctx.services
        mux = await services.multiplexer()
        listener = services.backend_listener(self.ctx.step.name, _item_of(self.ctx))
        log.debug("step %s: asking again (attempt %d)", self.ctx.label, self.state.attempts)
        try:
            if request.role is not None:
                result = await mux.call_role(request.role, prompt, listener=listener)
            else:
                assert request.backend is not None  # a query names a role or a backend
                result = await mux.call_backend(request.backend, prompt, listener=listener)
        except LlmMuxError as exc:
            who = f"role '{request.role}'" if request.role else f"backend '{request.backend}'"
            message = f"attempt {self.state.attempts}: asking {who} again failed: {exc.message}"
            raise self.failed(message, retryable=True) from exc
        return str(result.output)


def _undone(state: ApplyState) -> str:
    if state.rolled_back:
        return "the edits were rolled back"
    if not state.applied:
        return "no file was changed"
    return "the edits were kept (rollback_on_failure = false)"


def _item_of(ctx: StepContext[Step]) -> int | None:
    loop = ctx.context.get("loop")
    return loop.get("index0") if isinstance(loop, dict) else None


KIND: StepKind[ApplyStep] = ApplyKind()
