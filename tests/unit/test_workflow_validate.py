"""Parsing and static checks of workflow files, all problems reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_mux.config import Backend, Config, Role, RoleOverride, Team
from llm_mux.workflow.model import parse_workflow
from llm_mux.workflow.validate import Report, WorkflowInvalid, check

CONFIG = Config(
    backends={
        "claude": Backend(name="claude", command="claude", args=["-p"]),
        "codex": Backend(name="codex", command="codex"),
        "leaky": Backend(name="leaky", command="x", args=["--key", "${OPENAI_API_KEY}"]),
    },
    roles={
        "analyzer": Role(name="analyzer", backends=["claude", "codex"], execution="parallel"),
        "quick": Role(name="quick", backends=["claude"]),
    },
)


def report_of(tmp_path: Path, text: str, team: Team | None = None) -> Report:
    path = tmp_path / "wf.toml"
    path.write_text(text, encoding="utf-8")
    workflow, issues = parse_workflow(path)
    return check(workflow, issues, CONFIG, team)


def errors(report: Report) -> list[str]:
    return [i.format() for i in report.errors]


def only_error(report: Report) -> str:
    found = errors(report)
    assert len(found) == 1, found
    return found[0]


def test_valid_workflow_has_a_plan(tmp_path: Path) -> None:
    report = report_of(
        tmp_path,
        """
name = "ok"
[[steps]]
name = "a"
type = "shell"
run = "echo hi"
[[steps]]
name = "b"
type = "query"
role = "analyzer"
prompt = "{{ steps.a.output }}"
depends_on = ["a"]
""",
    )
    assert errors(report) == []
    plan = report.raise_for_errors()
    assert [s.name for s in plan.steps] == ["a", "b"]
    assert report.workflow.name == "ok"


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    report = report_of(tmp_path, '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    assert report.workflow.name == "wf"


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    message = only_error(report_of(tmp_path, 'name = "x"\n[[steps]]\nname = "a\n'))
    assert message.startswith(f"{tmp_path / 'wf.toml'}:3:")
    assert "invalid TOML" in message


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ('type = "shel"\nrun = "x"', "unknown step type 'shel' (did you mean 'shell'?)"),
        ('run = "x"', "missing required field 'type'"),
        ('type = "shell"', "missing required field 'run' for a shell step"),
        ('type = "query"\nprompt = "x"', "exactly one of 'role' or 'backend'"),
        ('type = "shell"\nrun = "x"\nprompt = "y"', "'prompt' is not a field of shell steps"),
        ('type = "shell"\nrun = "x"\ndepnds_on = []', "did you mean 'depends_on'"),
        ('type = "shell"\nrun = "x"\ntimeout = "soon"', "invalid duration 'soon'"),
        ('type = "shell"\nrun = "x"\nretries = -1', "'retries'"),
        ('type = "apply"', "exactly one of 'source' or 'edits'"),
        ('type = "store"', "missing required field 'prompt' for a store step"),
        ('type = "query"\nbackend = "claude"\nprompt = "x"\nparallel = true', "apply to a 'role'"),
    ],
)
def test_step_field_errors_name_the_step_and_line(tmp_path: Path, step: str, expected: str) -> None:
    message = only_error(report_of(tmp_path, f'[[steps]]\nname = "s"\n{step}\n'))
    assert expected in message
    assert "step 's'" in message and f"{tmp_path / 'wf.toml'}:" in message


def test_header_unknown_key_did_you_mean(tmp_path: Path) -> None:
    text = 'descripton = "x"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n'
    assert "did you mean 'description'" in only_error(report_of(tmp_path, text))


def test_all_errors_at_once(tmp_path: Path) -> None:
    report = report_of(
        tmp_path,
        """
[[steps]]
name = "a"
type = "shell"
run = "echo {{ steps.b.output }}"
depends_on = ["zz"]

[[steps]]
name = "a"
type = "shell"
run = "true"

[[steps]]
name = "b"
type = "query"
role = "analyser"
prompt = "{% if %}"
""",
    )
    found = "\n".join(errors(report))
    assert "depends_on names unknown step 'zz'" in found
    assert "duplicate step name 'a'" in found
    assert "references steps.b, which is not among its dependencies" in found
    assert "unknown role 'analyser' (did you mean 'analyzer'?)" in found
    assert "template syntax error" in found
    with pytest.raises(WorkflowInvalid, match="has 5 errors"):
        report.raise_for_errors()


def test_cycle_is_named(tmp_path: Path) -> None:
    text = "".join(
        f'[[steps]]\nname = "{n}"\ntype = "shell"\nrun = "true"\ndepends_on = ["{d}"]\n'
        for n, d in (("a", "c"), ("b", "a"), ("c", "b"))
    )
    assert "dependency cycle: a → c → b → a" in only_error(report_of(tmp_path, text))


def test_references_must_be_ancestors_in_every_field(tmp_path: Path) -> None:
    report = report_of(
        tmp_path,
        """
output = "{{ steps.nope.output }}"
[[steps]]
name = "a"
type = "shell"
run = "true"
[[steps]]
name = "b"
type = "shell"
run = "true"
if = "steps.a.output == 'x'"
for_each = "steps['a'].output | lines"
[[steps]]
name = "c"
type = "apply"
source = "steps.b"
""",
    )
    found = "\n".join(errors(report))
    assert found.count("not among its dependencies") == 3  # if, for_each, source
    assert "output references unknown step 'nope'" in found


def test_transitive_ancestor_is_fine(tmp_path: Path) -> None:
    text = """
[[steps]]
name = "a"
type = "shell"
run = "true"
[[steps]]
name = "b"
type = "shell"
run = "true"
depends_on = ["a"]
[[steps]]
name = "c"
type = "query"
backend = "claude"
prompt = "{{ steps.a.output }}"
depends_on = ["b"]
"""
    assert errors(report_of(tmp_path, text)) == []


def test_unsafe_shell_context_is_refused(tmp_path: Path) -> None:
    text = '[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo ${{ args.x }}"\n'
    message = only_error(report_of(tmp_path, text))
    assert "step 'a'" in message and "'$'" in message


def test_invalid_output_schema(tmp_path: Path) -> None:
    text = """
[[steps]]
name = "a"
type = "query"
role = "quick"
prompt = "x"
[steps.output_schema]
type = "objekt"
"""
    message = only_error(report_of(tmp_path, text))
    assert "invalid output_schema" in message and ":7:" in message


def test_workflow_roles_extend_the_config(tmp_path: Path) -> None:
    text = """
[roles.multi]
backends = ["claude", "codx"]
execution = "parallel"
[[steps]]
name = "a"
type = "query"
role = "multi"
prompt = "x"
"""
    message = only_error(report_of(tmp_path, text))
    assert "[roles.multi] names unknown backend 'codx' (did you mean 'codex'?)" in message


def test_min_success_checks_consider_the_team(tmp_path: Path) -> None:
    text = """
[[steps]]
name = "a"
type = "query"
role = "analyzer"
prompt = "x"
min_success = 2
"""
    assert errors(report_of(tmp_path, text)) == []
    team = Team(name="t", roles={"analyzer": RoleOverride(backends=["claude"])})
    assert "has only 1 backend" in only_error(report_of(tmp_path, text, team))
    quick = text.replace('"analyzer"', '"quick"')
    assert "set parallel = true" in only_error(report_of(tmp_path, quick))


def test_warnings_for_millisecond_looking_timeouts_and_secret_args(tmp_path: Path) -> None:
    text = 'timeout = 5000\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\ntimeout = 1500\n'
    report = report_of(tmp_path, text)
    assert errors(report) == []
    warnings = [w.format() for w in report.warnings]
    assert any(
        ":1: timeout = 5000 is 5000 seconds, so it will wait up to 1h23m20s; if you meant "
        'milliseconds, write "5000ms"' in w
        for w in warnings
    )
    assert any("step 'a': timeout = 1500 is 1500 seconds" in w and "25m" in w for w in warnings)
    assert any("backend 'leaky'" in w and "env" in w for w in warnings)


def test_plain_timeouts_are_seconds_and_strings_carry_their_unit(tmp_path: Path) -> None:
    text = (
        'timeout = 600\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\ntimeout = 180\n'
        '[[steps]]\nname = "b"\ntype = "shell"\nrun = "true"\ntimeout = "500ms"\n'
        '[[steps]]\nname = "c"\ntype = "shell"\nrun = "true"\ntimeout = "3m"\nretry_delay = 250\n'
    )
    report = report_of(tmp_path, text)
    assert errors(report) == []
    assert not any("timeout" in w.message for w in report.warnings)
    workflow = report.workflow
    assert workflow.timeout == 600_000
    assert [s.timeout for s in workflow.steps] == [180_000, 500, 180_000]
    assert workflow.steps[2].retry_delay == 250  # retry_delay stays in ms, like the backend key


def test_max_parallel_needs_for_each(tmp_path: Path) -> None:
    text = '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\nmax_parallel = 2\n'
    assert "max_parallel applies only" in only_error(report_of(tmp_path, text))


def test_input_default_must_be_an_option(tmp_path: Path) -> None:
    text = """
[[steps]]
name = "a"
type = "input"
prompt = "go?"
options = ["yes", "no"]
default = "maybe"
"""
    assert "not one of the options" in only_error(report_of(tmp_path, text))


def test_no_steps_is_an_error(tmp_path: Path) -> None:
    assert "no steps" in only_error(report_of(tmp_path, 'name = "x"\n'))
