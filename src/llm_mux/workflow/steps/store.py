"""``type = "store"``: persist the facts, relationships and entities a step found.

The rendered prompt holds JSON (plain, fenced or the first balanced object); it is validated
as a whole and written in one transaction to the current ecosystem's database (``default``
outside any ecosystem), so invalid input stores nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_mux.errors import StoreError
from llm_mux.workflow.steps.base import CheckEnv, StepContext, StepFailed, StepKind, StepOutput

if TYPE_CHECKING:
    from llm_mux.workflow.model import Step, StoreStep


def ecosystem_name(ctx: StepContext[Step]) -> str | None:
    """The detected (or forced) ecosystem of this run, if any."""
    detected = ctx.services.ecosystem
    return detected.name if detected is not None else None


class StoreKind:
    """The store step kind."""

    def check(self, step: StoreStep, env: CheckEnv) -> list[tuple[str, str]]:
        return []

    async def run(self, ctx: StepContext[StoreStep]) -> StepOutput:
        from llm_mux.memory import MemoryStore
        from llm_mux.memory.cancel import run_cancellable

        step = ctx.step
        text = await ctx.render(step.prompt, "prompt")
        ecosystem = ecosystem_name(ctx)
        store = MemoryStore.configured(ecosystem, ctx.services.config.defaults.memory_url)
        try:  # interrupted: stored nothing (cancelled) or everything (done), never a mix
            counts = await run_cancellable(lambda: store.store_text(text, ecosystem=ecosystem))
        except StoreError as exc:
            raise StepFailed(exc.message, retryable=False) from exc
        summary = {
            "facts": counts.facts,
            "relationships": counts.relationships,
            "entities": counts.entities,
            "database": store.location,
        }
        return StepOutput(output=f"stored {counts}", json=summary, has_json=True)


KIND: StepKind[StoreStep] = StoreKind()
