"""``type = "query"``: send the rendered prompt to a role (or one backend).

With ``output_schema`` the answer's JSON is taken from the whole text, else the first
```json fenced block, else the first balanced ``{…}``/``[…]`` (the rules of
:mod:`llm_mux.answer_json`, shared with store and apply), and validated; a mismatch fails
the step with the schema error. With a parallel role each backend's answer is validated on
its own: one that does not match counts as that backend's failure toward ``min_success``, and
``json`` is the list of the documents in role order. The answer is data: it is never rendered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_mux.errors import did_you_mean
from llm_mux.values import replace
from llm_mux.workflow.results import QueryRequest
from llm_mux.workflow.steps.base import CheckEnv, StepContext, StepFailed, StepKind, StepOutput

if TYPE_CHECKING:
    from llm_mux.workflow.model import QueryStep, Step


def extract_json(text: str) -> Any:
    """The JSON an answer holds (see :mod:`llm_mux.answer_json`); raises ValueError if none."""
    from llm_mux.answer_json import extract

    return extract(text)


def check_schema(schema: dict[str, Any]) -> str | None:
    """The problem of an invalid JSON Schema, or None."""
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path)
        return f"invalid output_schema: {exc.message}" + (f" (at {path})" if path else "")
    return None


def validate_answer(text: str, schema: dict[str, Any]) -> Any:
    """The answer's JSON, validated; StepFailed naming the schema error otherwise."""
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    try:
        value = extract_json(text)
    except ValueError:
        raise StepFailed("output_schema: the answer holds no JSON") from None
    validator = validator_for(schema)(schema)
    error: ValidationError | None = best_match(validator.iter_errors(value))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise StepFailed(f"the answer does not match output_schema: {error.message} (at {at})")
    return value


class QueryKind:
    """The query step kind."""

    def check(self, query: QueryStep, env: CheckEnv) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if query.backend is not None and query.backend not in env.config.backends:
            problems.append(("backend", _unknown("backend", query.backend, env.config.backends)))
        if query.role is not None:
            problems.extend(_role_problems(query, env))
        if query.output_schema is not None:
            problem = check_schema(query.output_schema)
            if problem:
                problems.append(("output_schema", problem))
        return problems

    async def run(self, ctx: StepContext[QueryStep]) -> StepOutput:
        step = ctx.step
        prompt = await ctx.render(step.prompt, "prompt")
        mux = await ctx.services.multiplexer()
        listener = ctx.services.backend_listener(ctx.step.name, _item_of(ctx))
        if step.role is not None:
            result = await mux.call_role(
                step.role,
                prompt,
                parallel=step.parallel,
                min_success=step.min_success,
                listener=listener,
            )
        else:
            assert step.backend is not None  # the model holds exactly one of role and backend
            result = await mux.call_backend(step.backend, prompt, listener=listener)
        return _output(step, result, QueryRequest(prompt, step.role, step.backend))


def _output(step: QueryStep, result: Any, request: QueryRequest) -> StepOutput:
    if step.output_schema is not None and result.execution == "parallel":
        return _parallel_output(step.output_schema, result, request)
    out = _plain_output(result, request)
    if step.output_schema is not None:
        try:
            out.json, out.has_json = validate_answer(out.output, step.output_schema), True
        except StepFailed as exc:
            exc.partial = out
            raise
    return out


def _parallel_output(schema: dict[str, Any], result: Any, request: QueryRequest) -> StepOutput:
    """Each answer checked against ``schema``; a mismatch is that backend's failure."""
    from llm_mux.errors import ParseError

    documents: dict[str, Any] = {}
    outcomes = []
    for outcome in result.outcomes:
        if outcome.ok:
            try:
                documents[outcome.backend] = validate_answer(outcome.output, schema)
            except StepFailed as exc:
                error = ParseError(exc.message, backend=outcome.backend)
                outcome = replace(outcome, response=None, error=error)
        outcomes.append(outcome)
    checked = replace(result, outcomes=outcomes)
    out = _plain_output(checked, request)
    if not checked.ok:
        order = [o.backend for o in outcomes]
        message = (
            f"{len(checked.successes)} of {len(outcomes)} answers match output_schema, "
            f"fewer than min_success = {checked.min_success}"
        )
        raise StepFailed("\n".join([message, *checked.failure_lines(order)]), partial=out)
    out.json, out.has_json = [documents[name] for name in checked.backends], True
    return out


def _plain_output(result: Any, request: QueryRequest) -> StepOutput:
    return StepOutput(
        output=result.output,
        outputs=list(result.outputs),
        backend=result.backend,
        backends=list(result.backends),
        usage=dict(result.usage) if result.usage else None,
        request=request,
    )


def _item_of(ctx: StepContext[Step]) -> int | None:
    loop = ctx.context.get("loop")
    return loop.get("index0") if isinstance(loop, dict) else None


def _unknown(what: str, name: str, known: Any) -> str:
    listing = ", ".join(known) or "none"
    return f"unknown {what} '{name}'{did_you_mean(name, known)}; known {what}s: {listing}"


def _role_problems(step: QueryStep, env: CheckEnv) -> list[tuple[str, str]]:
    role = env.config.roles.get(step.role or "")
    if role is None:
        return [("role", _unknown("role", step.role or "", env.config.roles))]
    backends, execution = list(role.backends), role.execution
    override = env.team.roles.get(role.name or step.role or "") if env.team else None
    if override is not None:
        backends, execution = list(override.backends), override.execution or execution
    if step.min_success is None:
        return []
    if not step.parallel and execution != "parallel":
        return [
            (
                "min_success",
                f"min_success applies to parallel execution, but role '{step.role}' runs "
                f"'{execution}'; set parallel = true or remove min_success",
            )
        ]
    if step.min_success > len(backends):
        return [
            (
                "min_success",
                f"min_success = {step.min_success} but role '{step.role}' has only "
                f"{len(backends)} backend(s)",
            )
        ]
    return []


KIND: StepKind[QueryStep] = QueryKind()
