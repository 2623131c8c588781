"""Resumable runs, runner side: hash each step's inputs, reuse what a run already did.

A :class:`Journal` is handed to the runner. Before a step (or for_each item) runs, the runner
asks :meth:`Journal.reuse`: a step that succeeded in the recorded run with the same input
hash — its definition, its rendered templates (and item) and the backends it resolves to —
comes back as its recorded result, marked ``resumed``; an apply step only while the files it
wrote still hash as recorded. Steps are keyed by name, never by position: a concurrent DAG
finishes steps in a different order each time. After a step runs, :meth:`Journal.record`
writes its result in the background. A ledger that cannot be written warns once and the run
goes on unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_mux.errors import LlmMuxError
from llm_mux.logs import get_logger
from llm_mux.memory.ledger import WHOLE_STEP, Ledger, RecordedStep, StepRecord
from llm_mux.schema import dump
from llm_mux.workflow.results import (
    Outputs,
    QueryRequest,
    StepResult,
    jsonable,
    query_request,
    set_json,
    set_request,
    step_document,
)

if TYPE_CHECKING:
    from llm_mux.workflow.model import Step

log = get_logger("resume")
UNRECORDED = "run not recorded; --resume unavailable"
BATCH_WAIT_S = 0.2  # results are written at most this long after their step ends
_PRIVATE = ("_request", "_files", "resumed")
_CHUNK = 1 << 20


class Journal:
    """One run's view of the ledger: recorded steps to reuse, new results to write."""

    def __init__(
        self,
        ledger: Ledger,
        run_id: str,
        recorded: Mapping[tuple[str, int], RecordedStep],
        project_dir: Path,
        backends: Mapping[str, Any],
    ) -> None:
        self.ledger, self.run_id, self.recorded = ledger, run_id, dict(recorded)
        self.project_dir = project_dir
        self.backends = backends  # step name -> the resolved role and backend settings
        self.hashes: dict[tuple[str, int], str] = {}
        self.broken = False
        self._pending: list[StepRecord] = []
        self._writer: asyncio.Future[None] | None = None
        self._flush = asyncio.Event()
        self._renewer: asyncio.Future[None] | None = None

    # --- reuse ---

    async def reuse(
        self,
        step: Step,
        context: Mapping[str, Any],
        item: int = WHOLE_STEP,
        allow: bool = True,
        noting: Callable[[str], None] | None = None,
    ) -> StepResult | None:
        """The recorded result when ``step`` (``item``) succeeded with these same inputs.

        The templates render under the same budget as the step's own rendering: off the event
        loop when slow, stopped when the run is cancelled.
        """
        from llm_mux.templates.budget import render_off_loop

        backends = self.backends.get(step.name)
        digest = await render_off_loop(lambda: input_hash(step, context, backends, item, noting))
        self.hashes[(step.name, item)] = digest
        found = self.recorded.get((step.name, item)) if allow else None
        if found is None or found.status != "success" or found.input_hash != digest:
            return None
        if not self._files_unchanged(found.result.get("_files")):
            return None
        result = decode_result(step.name, found.result)
        result.extra["resumed"] = True
        return result

    def _files_unchanged(self, files: Any) -> bool:
        if not isinstance(files, dict):
            return True
        return all(_file_hash(self.project_dir, path) == h for path, h in files.items())

    # --- recording ---

    def record(self, step: str, result: StepResult, item: int = WHOLE_STEP) -> None:
        """Queue ``result`` for the ledger (a resumed result is there already).

        One background writer drains the queue every ``BATCH_WAIT_S``, each batch in one
        transaction, so a run of many short steps costs a few writes rather than one per step.
        """
        if self.broken or result.extra.get("resumed") or (step, item) not in self.hashes:
            return
        document = encode_result(result, self.project_dir)
        digest = self.hashes[(step, item)]
        self._pending.append(StepRecord(step, item, digest, result.status, document))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._drain(BATCH_WAIT_S))

    async def _drain(self, wait: float = 0.0) -> None:
        while self._pending and not self.broken:
            if not self._flush.is_set():  # gather what finishes meanwhile into one batch
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), wait)
            batch, self._pending = self._pending, []
            await self._write(partial(self.ledger.record_steps, self.run_id, batch))

    async def _write(self, call: Any) -> None:
        if self.broken:
            return
        try:
            await asyncio.to_thread(call)
        except LlmMuxError as exc:
            self.fail(exc.message)

    def fail(self, reason: str) -> None:
        """Stop recording and say so, once."""
        if not self.broken:
            self.broken = True
            warn(f"{UNRECORDED} ({reason})")

    # --- the lease ---

    def start(self) -> None:
        """Renew the lease every third of it while the run goes on."""
        self._renewer = asyncio.ensure_future(self._renew())

    async def _renew(self) -> None:
        while not self.broken:
            await asyncio.sleep(self.ledger.lease_s / 3)
            await self._write(lambda: self.ledger.renew(self.run_id))

    def stop(self) -> None:
        """Stop renewing the lease (the run ended without a result to record)."""
        if self._renewer is not None:
            self._renewer.cancel()

    async def finish(self, success: bool, duration_ms: int, error: str | None, steps: Any) -> None:
        """Wait for pending writes, then mark the run finished and release it."""
        self.stop()
        self._flush.set()  # write what is pending now rather than after the wait
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._drain()
        await self._write(
            lambda: self.ledger.finish(
                self.run_id, success=success, duration_ms=duration_ms, error=error, steps=steps
            )
        )


def warn(text: str) -> None:
    from llm_mux.secrets import redact

    try:
        sys.stderr.write(f"warning: {redact(text)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# --- the input hash ---


def input_hash(
    step: Step,
    context: Mapping[str, Any],
    backends: Any,
    item: int,
    noting: Callable[[str], None] | None = None,
) -> str:
    """sha256 of the step's definition, its rendered templates, its item and its backends.

    Rendered texts are fed to the hash one at a time, never joined into one document: a step
    reading a 100 MB output costs one rendering, not several copies of it. ``noting`` is told
    which template starts rendering, so a timeout or a signal can name it.
    """
    head = {
        "definition": dump(step, by_alias=True),
        "item": [item, jsonable(context.get("item")) if item != WHOLE_STEP else None],
        "backends": backends,
    }
    digest = hashlib.sha256(_canonical(head))
    for name, text in _rendered(step, context, noting or _unnoted):
        digest.update(_canonical([name, len(text)]))
        for start in range(0, len(text), _CHUNK):  # no second full-size copy of a big text
            digest.update(text[start : start + _CHUNK].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _canonical(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def _unnoted(field: str) -> None:
    """No one asked which template renders."""


def _rendered(
    step: Step, context: Mapping[str, Any], noting: Callable[[str], None]
) -> Iterator[tuple[str, str]]:
    """Each template of the step rendered (a failure renders as its message), then for_each."""
    from llm_mux.templates import render  # Jinja itself only for markup

    for name, source in {**step.template_fields(), **step.shell_fields()}.items():
        noting(name)
        try:
            text = render(source, context, where=name)
        except LlmMuxError as exc:
            text = f"<unrenderable: {exc.message}>"
        yield name, text
    if step.for_each:
        from llm_mux.templates import evaluate

        try:
            items = jsonable(list(evaluate(step.for_each, context)))
            yield "for_each", json.dumps(items, default=str)
        except (LlmMuxError, TypeError) as exc:
            yield "for_each", f"<unrenderable: {exc}>"


def resolved_backends(step: Step, config: Any, team: Any) -> Any:
    """What a query step calls: its role after team overrides, and each backend's settings."""
    role_name, backend = getattr(step, "role", None), getattr(step, "backend", None)
    if role_name is None and backend is None:
        return None
    names = [backend] if backend else []
    role: Any = None
    if role_name:
        from llm_mux.roles import Multiplexer

        try:
            role = Multiplexer(config, team=team).resolve_role(role_name)
        except LlmMuxError:
            return {"role": role_name}
        names = list(role.backends)
    settings = {n: dump(b) for n in names if (b := config.backends.get(n))}
    return {"role": dump(role) if role else None, "backends": settings}


# --- results to and from the ledger ---


def encode_result(result: StepResult, project_dir: Path) -> dict[str, Any]:
    """A step result as JSON for the ledger, with what resuming needs to trust it.

    ``outputs`` is left out when it is just ``[output]`` and ``json`` when it was never
    parsed (decoding restores both), so a big output is stored once and never parsed here.
    """
    document = step_document(result, parse=False)
    if document["outputs"] == [result.output] and not result.backends[1:]:
        del document["outputs"]
    request = query_request(result)
    if request is not None:
        document["_request"] = [request.prompt, request.role, request.backend]
    applied = result.extra.get("applied")
    if isinstance(applied, list):
        document["_files"] = {str(p): _file_hash(project_dir, str(p)) for p in applied}
    document.pop("resumed", None)
    return document


def decode_result(name: str, document: Mapping[str, Any]) -> StepResult:
    """A recorded step result, as templates and ``--output json`` see a fresh one."""
    result = StepResult(name, document.get("status", "success"), output=document.get("output", ""))
    outputs = document.get("outputs", [result.output] if result.output else [])
    result.outputs = Outputs(outputs or (), document.get("backends") or ())
    result.error = document.get("error")
    result.duration_ms = int(document.get("duration_ms") or 0)
    result.backend = document.get("backend")
    result.backends = list(document.get("backends") or ())
    result.exit_code = document.get("exit_code")
    result.usage = document.get("usage")
    if document.get("json") is not None:
        set_json(result, document["json"])
    if isinstance(items := document.get("items"), list):
        result.items = [_decode_item(name, i, doc) for i, doc in enumerate(items)]
    if isinstance(request := document.get("_request"), list) and len(request) == 3:
        set_request(result, QueryRequest(*request))
    known = set(step_document(StepResult(name))) | set(_PRIVATE) | {"item"}
    result.extra = {k: v for k, v in document.items() if k not in known}
    return result


def _decode_item(name: str, index: int, document: Mapping[str, Any]) -> StepResult:
    result = decode_result(f"{name}[{index + 1}]", document)
    result.item = document.get("item")
    return result


def _file_hash(project_dir: Path, path: str) -> str:
    target = Path(path) if Path(path).is_absolute() else project_dir / path
    try:
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except OSError:
        return "missing"
