"""Every static check of a workflow (SPEC §2), reported all at once.

``validate`` and ``run`` share this: names, types and fields (from the model), the DAG
(unknown dependencies, cycles), ``steps.X`` references that would not exist yet, roles and
backends, template syntax, shell contexts that cannot be made exact, output schemas, and
warnings for likely mistakes. A run starts only from a clean :class:`Report`, and its
:class:`Plan` (order, ancestry) is computed here once, never per step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from llm_mux.errors import LlmMuxError, WorkflowError, did_you_mean
from llm_mux.values import Value, field
from llm_mux.workflow.dag import Graph
from llm_mux.workflow.durations import format_ms, looks_like_ms
from llm_mux.workflow.model import ApplyStep, Issue, Locator, Step, Workflow

if TYPE_CHECKING:
    from llm_mux.config import Config, Team

_SECRET_NAME = re.compile(r"(?i)key|token|secret|passw|pwd|credential|auth|cookie|session")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Plan(Value):
    """What the runner needs, computed once: the graph, file-order index, ancestry bitsets."""

    steps: tuple[Step, ...]
    graph: Graph
    index: dict[str, int]
    ancestors: tuple[int, ...]

    @property
    def everything(self) -> int:
        return (1 << len(self.steps)) - 1


class Report(Value, frozen=False):
    """Errors and warnings of one workflow; ``plan`` is set when the DAG is sound."""

    workflow: Workflow
    issues: list[Issue] = field(factory=list)
    plan: Plan | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if not i.warning]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.warning]

    def raise_for_errors(self) -> Plan:
        """The plan, or a :class:`WorkflowInvalid` listing every error."""
        if self.errors or self.plan is None:
            raise WorkflowInvalid(self.errors or [Issue("the workflow is invalid")])
        return self.plan


class WorkflowInvalid(WorkflowError):
    """A workflow failed its static checks; ``issues`` holds each error."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues
        if len(issues) == 1:
            message = issues[0].format()
        else:
            lines = "\n".join(f"  {i.format()}" for i in issues)
            message = f"the workflow has {len(issues)} errors:\n{lines}"
        super().__init__(message)


def check(
    workflow: Workflow, parse_issues: Iterable[Issue], config: Config, team: Team | None
) -> Report:
    """Run every static check; the returned report holds all problems found."""
    checker = _Checker(workflow, config.with_roles(workflow.roles), team)
    checker.issues.extend(parse_issues)
    checker.run()
    issues = sorted(checker.issues, key=lambda i: (i.line is None, i.line or 0))
    return Report(workflow, issues, checker.plan)


class _Checker:
    def __init__(self, workflow: Workflow, config: Config, team: Team | None) -> None:
        self.workflow, self.config, self.team = workflow, config, team
        self.locator = Locator(workflow.path)
        self.issues: list[Issue] = []
        self.plan: Plan | None = None
        self.raw_index: dict[object, int] = {}
        for i, raw in enumerate(workflow.raw_steps):
            self.raw_index.setdefault(raw.get("name"), i)
        self.position = {id(s): p for s, p in zip(workflow.steps, workflow.positions, strict=False)}

    def add(
        self,
        message: str,
        step: Step | str | None = None,
        key: str | None = None,
        *,
        warn: bool = False,
        position: int | None = None,
    ) -> None:
        if isinstance(step, Step):
            position = self.position.get(id(step))
            step = step.name
        elif step is not None and position is None:
            position = self.raw_index.get(step)
        line = self._line(step, key, position)
        file = str(self.workflow.path)
        self.issues.append(Issue(message, file=file, line=line, step=step, warning=warn))

    def _line(self, step: str | None, key: str | None, position: int | None) -> int | None:
        if step is None:
            return self.locator.top_key(key) if key else None
        return None if position is None else self.locator.step_key(position, key)

    def run(self) -> None:
        self._duplicates()
        graph = self._graph()
        self._header_checks()
        for step in self.workflow.steps:
            self._step_checks(step)
        self._backend_arg_secrets()
        self.issues.extend(Issue(w, warning=True) for w in self.config.warnings())
        order = graph.order()
        if order is None:
            cycle = graph.find_cycle() or []
            self.add("dependency cycle: " + " → ".join(cycle), cycle[0] if cycle else None)
            return
        ancestors = graph.ancestors(order)
        index = {name: i for i, name in enumerate(graph.names)}
        self.plan = Plan(tuple(self.workflow.steps), graph, index, tuple(ancestors))
        self._references(self.plan)

    # --- names and graph ---

    def _duplicates(self) -> None:
        seen: set[str] = set()
        for position, raw in enumerate(self.workflow.raw_steps):
            name = raw.get("name")
            if isinstance(name, str) and name in seen:
                message = f"duplicate step name '{name}' (step names must be unique)"
                self.add(message, name, "name", position=position)
            elif isinstance(name, str):
                seen.add(name)

    def _known_names(self) -> list[str]:
        names = (raw.get("name") for raw in self.workflow.raw_steps)
        return [n for n in names if isinstance(n, str) and n]

    def _graph(self) -> Graph:
        known = self._known_names()
        steps: list[Step] = []
        for step in self.workflow.steps:  # duplicates are reported; the first of each stays
            if all(step.name != kept.name for kept in steps):
                steps.append(step)
        self.workflow.steps = steps
        self.workflow.positions = [self.position[id(s)] for s in steps]
        for step in steps:
            for dep in step.depends_on:
                if dep not in known:
                    hint = did_you_mean(dep, known)
                    self.add(f"depends_on names unknown step '{dep}'{hint}", step, "depends_on")
        return Graph.build([s.name for s in steps], {s.name: s.depends_on for s in steps})

    # --- references ---

    def _references(self, plan: Plan) -> None:
        known = self._known_names()
        for i, step in enumerate(plan.steps):
            for key, refs in self._step_refs(step):
                for ref in sorted(refs):
                    self._reference(step, key, ref, known, plan.ancestors[i], plan.index)
        if self.workflow.output is not None:
            refs = self._refs(self.workflow.output, None, "output")
            for ref in sorted(refs):
                if ref not in known:
                    hint = did_you_mean(ref, known)
                    self.add(f"output references unknown step '{ref}'{hint}", None, "output")

    def _step_refs(self, step: Step) -> Iterable[tuple[str, set[str]]]:
        for key, text in {**step.template_fields(), **step.shell_fields()}.items():
            yield key, self._refs(text, step.name, key)
        for key, expr in (("if", step.when), ("for_each", step.for_each)):
            if expr is not None:
                yield key, self._refs(expr, step.name, key, expression=True)
        if isinstance(step, ApplyStep) and step.source_step is not None:
            yield "source", {step.source_step}

    def _refs(self, text: str, step: str | None, key: str, *, expression: bool = False) -> set[str]:
        from llm_mux.templates import step_references

        try:
            return step_references(text, expression=expression)
        except LlmMuxError:
            return set()  # the syntax error is reported by the template checks

    def _reference(
        self, step: Step, key: str, ref: str, known: list[str], allowed: int, index: dict[str, int]
    ) -> None:
        if ref == step.name:
            self.add(f"{key} references the step itself (steps.{ref})", step, key)
        elif ref not in known:
            hint = did_you_mean(ref, known)
            self.add(f"{key} references unknown step '{ref}'{hint}", step, key)
        elif ref in index and not allowed >> index[ref] & 1:
            self.add(
                f"{key} references steps.{ref}, which is not among its dependencies, so its "
                f"value would not exist yet; add '{ref}' to depends_on",
                step,
                key,
            )

    # --- per step ---

    def _step_checks(self, step: Step) -> None:
        self._templates(step)
        position = self.position.get(id(step))
        if position is not None:
            self._timeout(step, self.workflow.raw_steps[position].get("timeout"))
        if step.max_parallel is not None and step.for_each is None:
            self.add("max_parallel applies only to a step with for_each", step, "max_parallel")
        self._kind_checks(step)

    def _templates(self, step: Step) -> None:
        from llm_mux import templates

        for key, text in step.template_fields().items():
            self._template_check(templates.check_syntax, text, step, key)
        for key, text in step.shell_fields().items():
            self._template_check(templates.check_shell_template, text, step, key)
        for key, expr in (("if", step.when), ("for_each", step.for_each)):
            if expr is not None:
                self._template_check(templates.check_expression, expr, step, key)

    def _template_check(
        self, checker: Callable[..., object], text: str, step: Step | None, key: str
    ) -> None:
        try:
            checker(text, where=key)
        except LlmMuxError as exc:
            self.add(exc.message, step, key)

    def _kind_checks(self, step: Step) -> None:
        from llm_mux.workflow.steps import get_kind
        from llm_mux.workflow.steps.base import CheckEnv

        env = CheckEnv(self.workflow, self.config, self.team)
        for key, problem in get_kind(step).check(step, env):
            self.add(problem, step, key)

    # --- header and config ---

    def _header_checks(self) -> None:
        self._timeout(None, self.workflow.raw.get("timeout"))
        if self.workflow.output is not None:
            from llm_mux import templates

            self._template_check(templates.check_syntax, self.workflow.output, None, "output")
        for name, role in self.workflow.roles.items():
            for backend in role.backends:
                if backend not in self.config.backends:
                    hint = did_you_mean(backend, self.config.backends)
                    known = ", ".join(self.config.backends) or "none"
                    message = (
                        f"[roles.{name}] names unknown backend '{backend}'{hint}; "
                        f"known backends: {known}"
                    )
                    line = self.locator.table_line(["roles", name])
                    self.issues.append(Issue(message, file=str(self.workflow.path), line=line))

    def _timeout(self, step: Step | None, raw: object) -> None:
        if looks_like_ms(raw):
            assert isinstance(raw, int | float)
            self.add(
                f"timeout = {raw} is {raw} seconds, so it will wait up to "
                f'{format_ms(raw * 1000)}; if you meant milliseconds, write "{raw}ms"',
                step,
                "timeout",
                warn=True,
            )

    def _backend_arg_secrets(self) -> None:
        for name, backend in self.config.backends.items():
            if backend.kind != "cli":
                continue
            for arg in backend.args:
                for var in _VAR.findall(arg):
                    if _SECRET_NAME.search(var):
                        self.issues.append(_secret_warning(name, var))


def _secret_warning(backend: str, var: str) -> Issue:
    return Issue(
        f"backend '{backend}' passes ${{{var}}} in args, where every user can read it "
        f"(e.g. with ps); pass it through env instead: [backends.{backend}.env] "
        f'{var} = "${{{var}}}"',
        warning=True,
    )
