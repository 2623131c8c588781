"""What a step kind is, and what the runner gives it.

A kind is a small object with ``check`` (static problems beyond the model, for
``validate``) and ``run`` (one execution: one step, or one item of a ``for_each``). It
returns a :class:`StepOutput` or raises :class:`StepFailed`; the runner owns everything
around it (``if``, ``for_each``, retries, timeout, events, results).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from llm_mux.errors import StepError
from llm_mux.values import Value, field

if TYPE_CHECKING:
    from llm_mux.config import Config, Team
    from llm_mux.ecosystems import Detected
    from llm_mux.events import BackendEvent
    from llm_mux.roles import Multiplexer
    from llm_mux.workflow.model import Step, Workflow
    from llm_mux.workflow.results import QueryRequest, StepResult

T = TypeVar("T")
S_co = TypeVar("S_co", bound="Step", covariant=True)
S_contra = TypeVar("S_contra", bound="Step", contravariant=True)
Ask = Callable[[str, Sequence[str], str | None], Awaitable[str | None]]
"""Ask the user (prompt, options, default) → answer; None when the run is not interactive."""


class StepFailed(StepError):
    """One execution of a step failed. ``partial`` keeps what it produced (exit code, stdout).

    ``retryable=False`` for failures a retry cannot fix (a template error, a bad schema).
    """

    def __init__(
        self, message: str, *, partial: StepOutput | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.retryable = retryable


class StepOutput(Value, frozen=False):
    """What one execution produced; the runner turns it into a :class:`StepResult`."""

    output: str = ""
    outputs: list[str] | None = None
    backend: str | None = None
    backends: list[str] = field(factory=list)
    exit_code: int | None = None
    usage: dict[str, Any] | None = None
    json: Any = None
    has_json: bool = False  # True when ``json`` was extracted and validated (output_schema)
    extra: dict[str, Any] = field(factory=dict)
    request: QueryRequest | None = None


class CheckEnv(Value):
    """What a static check may look at: the config with the workflow's roles, the team."""

    workflow: Workflow
    config: Config
    team: Team | None


class Services(Protocol):
    """Run-wide services a kind may use (one of each per run)."""

    project_dir: Path
    config: Config  # with the workflow's own [roles] merged in
    team: Team | None
    max_output: int  # bytes, from defaults.max_output_mb
    ask: Ask | None
    ecosystem: Detected | None  # the detected (or forced) ecosystem
    extras: dict[str, Any]  # per-run state a step kind may keep (e.g. an apply lock)

    async def multiplexer(self) -> Multiplexer:
        """The run's one Multiplexer (created on first use, closed when the run ends)."""
        ...

    def backend_listener(
        self, step: str, item: int | None = None
    ) -> Callable[[BackendEvent], None]:
        """A listener that reports a step's backend events to the renderer."""
        ...

    def warn(self, step: str, message: str) -> None:
        """Report a failure that cannot be raised (the step is being cancelled): it goes to
        the renderer at once and into the step's result."""
        ...


class StepContext(Value, Generic[S_co]):
    """One execution of one step: its model, its template context, the run's services."""

    step: S_co
    workflow: Workflow
    services: Services
    context: dict[str, Any]
    results: Mapping[str, StepResult]
    label: str  # "analyze" or "check-files[3]" for an item
    rendering: dict[str, str] = field(factory=dict)  # label -> field being rendered

    def where(self, field_name: str) -> str:
        """How template errors name the field (the run's error already names the step)."""
        return field_name

    async def render(
        self, template: str, field_name: str, extra: Mapping[str, Any] | None = None
    ) -> str:
        """Render a template field of this step (model output stays data), off the loop."""
        from llm_mux.templates import render

        context = self.context if extra is None else {**self.context, **extra}
        where = self.where(field_name)
        return await self.off_loop(field_name, lambda: render(template, context, where=where))

    async def off_loop(
        self,
        field_name: str,
        work: Callable[[], T],
        discard: Callable[[T], None] | None = None,
    ) -> T:
        """Run the render of a field so timeouts and signals hold while it runs.

        While it runs, ``rendering`` names the field, so a timeout or an interruption that
        stops it can say which template was rendering.
        """
        from llm_mux.templates.budget import render_off_loop

        self.rendering[self.label] = field_name
        limit = self.services.max_output
        try:
            result = await render_off_loop(work, max_output=limit, discard=discard)
        except Exception:
            self.rendering.pop(self.label, None)
            raise
        self.rendering.pop(self.label, None)
        return result


class StepKind(Protocol[S_contra]):
    """A step type over its model: a static check and one execution."""

    def check(self, step: S_contra, env: CheckEnv) -> list[tuple[str, str]]:
        """Problems ``validate`` reports for this step, as (field, message) pairs."""
        ...

    async def run(self, ctx: StepContext[S_contra]) -> StepOutput:
        """Execute once; raise :class:`StepFailed` on failure."""
        ...
