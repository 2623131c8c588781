"""``llm-mux validate WORKFLOW``: every static check, all problems at once; exit 0 or 2.

Warnings (likely mistakes that still run) go to stderr and keep exit 0. ``--output json``
prints one document: ``{"workflow", "file", "valid", "errors", "warnings"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from llm_mux.cli.completion import complete_workflow
from llm_mux.cli.options import get_settings, global_options

if TYPE_CHECKING:
    from llm_mux.workflow.model import Issue


@click.command("validate")
@click.argument("workflow", shell_complete=complete_workflow)
@global_options
def validate_command(workflow: str) -> None:
    """Check WORKFLOW without running it: fields, DAG, references, roles, templates.

    Exit 0 when it can run (warnings are printed on stderr), 2 with every error otherwise.

    \b
    Examples:
      llm-mux validate review
      llm-mux validate ./ci/triage.toml --output json
    """
    from llm_mux.cli.common import emit_json, emit_text
    from llm_mux.cli.run_cmd import print_warnings
    from llm_mux.workflow.api import prepare

    settings = get_settings()
    prepared = prepare(
        workflow, config_file=settings.config, team=settings.team, ecosystem=settings.ecosystem
    )
    report = prepared.report
    if settings.json:
        emit_json(document(prepared.workflow.name, str(prepared.workflow.path), report.issues))
    elif settings.output != "quiet":
        print_warnings(prepared)
    plan = report.raise_for_errors()
    if settings.output == "console":
        count = len(plan.steps)
        noun = "step" if count == 1 else "steps"
        emit_text(f"workflow '{prepared.workflow.name}' is valid ({count} {noun})")


def document(name: str, path: str, issues: list[Issue]) -> dict[str, Any]:
    def entry(issue: Issue) -> dict[str, Any]:
        return {
            "message": issue.message,
            "step": issue.step,
            "file": issue.file,
            "line": issue.line,
            "text": issue.format(),
        }

    return {
        "workflow": name,
        "file": path,
        "valid": not any(not i.warning for i in issues),
        "errors": [entry(i) for i in issues if not i.warning],
        "warnings": [entry(i) for i in issues if i.warning],
    }
