"""Step and run results: what templates see as ``steps.NAME.*`` and what ``--output json`` shows.

A :class:`StepResult` is an object with public attributes (not a mapping), so
``steps.x.items`` is the for_each results, never ``dict.items``. Its ``json`` is parsed on
first use: a 100 MB shell output that nobody reads as JSON is never parsed.
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, SupportsIndex, overload

from llm_mux.values import Value, field

Status = Literal["success", "failed", "skipped", "cancelled"]
_UNSET: Any = object()


class Outputs(list[str]):
    """Outputs in role order that also answer ``.BACKEND`` and ``["BACKEND"]``."""

    def __init__(self, outputs: Iterable[str] = (), backends: Iterable[str] = ()) -> None:
        super().__init__(outputs)
        self._by_backend = dict(zip(backends, self, strict=False))

    @overload
    def __getitem__(self, key: SupportsIndex) -> str: ...
    @overload
    def __getitem__(self, key: slice) -> list[str]: ...
    @overload
    def __getitem__(self, key: str) -> str: ...
    def __getitem__(self, key: SupportsIndex | slice | str) -> str | list[str]:
        if isinstance(key, str):
            return self._by_backend[key]
        return super().__getitem__(key)

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._by_backend[name]
        except KeyError:
            raise AttributeError(name) from None

    def backend_names(self) -> list[str]:
        return list(self._by_backend)


class QueryRequest(Value):
    """How a query step asked: lets an apply step re-ask the same role after a failed verify."""

    prompt: str
    role: str | None = None
    backend: str | None = None


class StepResult:
    """The outcome of one step (or one for_each item)."""

    def __init__(self, name: str, status: Status = "success", *, output: str = "") -> None:
        self.name = name
        self.status: Status = status
        self.output = output
        self.outputs = Outputs((output,)) if output else Outputs()
        self.error: str | None = None
        self.duration_ms = 0
        self.backend: str | None = None
        self.backends: list[str] = []
        self.exit_code: int | None = None
        self.usage: dict[str, Any] | None = None
        self.items: list[StepResult] | None = None
        self.item: Any = None
        self.extra: dict[str, Any] = {}
        self._json: Any = _UNSET
        self._request: QueryRequest | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("failed", "cancelled")

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    @property
    def resumed(self) -> bool:
        """Taken from the recorded run by ``--resume`` instead of run again."""
        return bool(self.extra.get("resumed", False))

    @property
    def json(self) -> Any:
        """The output parsed as JSON (validated when the step had an output_schema), or None."""
        if self._json is _UNSET:
            self._json = parse_json(self.output)
        return self._json

    def __getattr__(self, name: str) -> Any:
        # kind-specific fields (apply: applied, verify_output, attempts; store: stored…)
        if not name.startswith("_") and name in self.__dict__.get("extra", {}):
            return self.__dict__["extra"][name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"StepResult({self.name!r}, {self.status!r})"


def set_json(result: StepResult, value: Any) -> None:
    """Record JSON already extracted and validated (output_schema)."""
    result._json = value


def set_request(result: StepResult, request: QueryRequest | None) -> None:
    result._request = request


def query_request(result: StepResult) -> QueryRequest | None:
    """The prompt and role a query step used (None for other steps)."""
    return result._request


def parse_json(text: str) -> Any:
    """``text`` as JSON when the whole of it is JSON; None otherwise."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["-0123456789tfn':
        return None
    try:
        return _json.loads(stripped)
    except ValueError:
        return None


def skipped_result(name: str) -> StepResult:
    return StepResult(name, "skipped")


def step_document(result: StepResult, *, parse: bool = True) -> dict[str, Any]:
    """A step result as JSON-ready data (``parse=False``: ``json`` only if already known)."""
    data: dict[str, Any] = {
        "status": result.status,
        "output": result.output,
        "outputs": list(result.outputs),
        "failed": result.failed,
        "skipped": result.skipped,
        "error": result.error,
        "duration_ms": result.duration_ms,
        "backend": result.backend,
        "backends": list(result.backends),
        "exit_code": result.exit_code,
        "usage": result.usage,
        "json": result.json if parse or result._json is not _UNSET else None,
        "items": None if result.items is None else [_item_document(i, parse) for i in result.items],
    }
    data.update(result.extra)
    return data


def _item_document(result: StepResult, parse: bool = True) -> dict[str, Any]:
    data = step_document(result, parse=parse)
    data["item"] = jsonable(result.item)
    return data


def jsonable(value: Any) -> Any:
    """``value`` when JSON can hold it, else its text: a document never fails to encode."""
    try:
        _json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class RunResult(Value, frozen=False):
    """A whole run: what ``--output json`` prints and what the library returns."""

    workflow: str
    success: bool
    duration_ms: int
    output: str
    error: str | None
    steps: dict[str, StepResult]
    interrupted: int | None = None  # the signal number
    saved_to: Path | None = None
    warnings: Sequence[Any] = field(factory=list)
    run_id: str | None = None  # the id the runs ledger knows it by

    def document(self) -> dict[str, Any]:
        """The one JSON document of ``--output json``."""
        return {
            "workflow": self.workflow,
            "run_id": self.run_id,
            "success": self.success,
            "duration_ms": self.duration_ms,
            "output": self.output,
            "error": self.error,
            "steps": {name: step_document(r) for name, r in self.steps.items()},
        }
