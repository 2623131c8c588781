"""render, evaluate, filters, undefined-name messages, syntax errors and step references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from llm_mux.errors import TemplateError
from llm_mux.templates import (
    check_expression,
    check_syntax,
    evaluate,
    render,
    shell_escape,
    step_references,
)


@dataclass
class Result:
    output: str = "out"
    failed: bool = False
    skipped: bool = False
    exit_code: int | None = 0
    items: list[Any] = field(default_factory=list)

    @property
    def duration_ms(self) -> int:
        return 5

    def helper(self) -> None:
        """Methods are not offered as names."""


class Team:
    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return str(other) == self.name

    __hash__ = None  # type: ignore[assignment]


def context() -> dict[str, Any]:
    listing = {"output": "a.py\r\n\n  \nb c.py\n", "failed": False, "items": ["x", "y"]}
    return {
        "steps": {"fetch": Result(), "list": listing},
        "args": {"empty": "", "files": "a,b,,c"},
        "team": Team("rust"),
        "env": {"HOME": "/h"},
    }


def message(template: str, ctx: dict[str, Any] | None = None, where: str = "") -> str:
    with pytest.raises(TemplateError) as info:
        render(template, context() if ctx is None else ctx, where=where)
    assert info.value.exit_code == 2
    return info.value.message


def test_render_uses_values_as_data_never_as_templates() -> None:
    ctx = {"v": "{{ 7*7 }}{% for x in y %}", "steps": {"a": {"output": "{{ v }}"}}}
    assert render("{{ v }}|{{ steps.a.output }}", ctx) == "{{ 7*7 }}{% for x in y %}|{{ v }}"
    assert render("<&>'\"", {}) == "<&>'\""  # no autoescape
    assert render("a\n", {}) == "a\n"


def test_attributes_and_keys_both_resolve() -> None:
    ctx = context()
    assert render("{{ steps.fetch.output }} {{ steps['list'].failed }}", ctx) == "out False"
    assert render("{{ steps.list.items | join(',') }} {{ team }} {{ team.name }}", ctx) == (
        "x,y rust rust"
    )


def test_undefined_attribute_names_the_path_and_suggests() -> None:
    text = message("{{ steps.fetch.outptu }}", where="step 'fetch' (run)")
    assert text.startswith("step 'fetch' (run): line 1: 'outptu' is undefined on steps.fetch")
    assert "did you mean 'output'?" in text
    available = text.split("available: ")[1].split(", ")
    assert {"output", "failed", "skipped", "exit_code", "items", "duration_ms"} == set(available)


def test_undefined_key_on_mappings_and_top_level_names() -> None:
    assert "'fetc' is undefined on steps; did you mean 'fetch'? available: fetch, list" in (
        message("{{ steps.fetc.output }}")
    )
    text = message("{{ stepz }}")
    assert "'stepz' is undefined; did you mean 'steps'?" in text
    assert "available: steps, args, team, env" in text
    assert "'outptu' is undefined on steps.list;" in message("{{ steps['list']['outptu'] }}")
    assert "on steps['my step']" in message("{{ steps['my step'].x }}", {"steps": {"my step": {}}})


def test_undefined_reports_its_line_and_other_lookups() -> None:
    assert message("a\nb {{ steps.list.nope }}").startswith("line 2: 'nope' is undefined")
    assert "index 5 does not exist on steps.list.items (it has 2 items)" in message(
        "{{ steps.list.items[5] }}"
    )
    assert "(a str, it has no fields)" in message("{{ steps.fetch.output.x }}")
    assert "'x' is undefined" in message("{% if x %}{% endif %}")
    assert "'x' is undefined" in message("{% for i in x %}{% endfor %}")


def test_sandbox_refuses_internals() -> None:
    assert "not allowed" in message("{{ ''.__class__.__mro__ }}")


def test_other_runtime_errors_are_template_errors() -> None:
    assert "ZeroDivisionError" in message("\n{{ 1 / 0 }}")
    assert message("\n{{ 1 / 0 }}").startswith("line 2:")


def test_syntax_errors_name_the_line_and_quote_it() -> None:
    with pytest.raises(TemplateError) as info:
        check_syntax("ok\n{{ x }\n", where="step 'a' (prompt)")
    assert info.value.message.startswith("step 'a' (prompt): line 2: template syntax error")
    assert "{{ x }" in info.value.message and info.value.line == 2
    assert "did you mean 'json'?" in message("{{ x | jsn }}")
    check_syntax("{% for x in y %}{{ x }}{% endfor %}")


def test_expressions_evaluate_to_values() -> None:
    ctx = context()
    assert evaluate("team == 'rust'", ctx) is True
    assert evaluate("team == 'go'", ctx) is False
    assert evaluate("steps.list.output | lines", ctx) == ["a.py", "  ", "b c.py"]
    assert evaluate("args.files | split(',')", ctx) == ["a", "b", "", "c"]
    assert evaluate("not steps.fetch.failed and steps.fetch.exit_code == 0", ctx) is True


def test_expression_errors() -> None:
    with pytest.raises(TemplateError, match="step 'x' \\(if\\): 'nope' is undefined"):
        evaluate("nope", context(), where="step 'x' (if)")
    with pytest.raises(TemplateError, match="did you mean 'output'"):
        evaluate("steps.fetch.outpt", context())
    with pytest.raises(TemplateError, match="syntax error"):
        check_expression("team ==")
    with pytest.raises(TemplateError, match="syntax error"):
        check_expression("a b")
    check_expression("steps.list.output | lines")


def test_shell_escape_quotes_any_string() -> None:
    assert shell_escape("it's") == "'it'\\''s'"
    assert shell_escape("") == "''"
    assert render("{{ v | shell_escape }}", {"v": "a b"}) == "'a b'"


def test_json_and_from_json() -> None:
    assert (
        render("{{ v | json }}", {"v": {"a": "é", "b": [1, None]}}) == '{"a": "é", "b": [1, null]}'
    )
    assert render("{{ r | json }}", {"r": Result(output="o")}).startswith('{"output": "o"')
    assert render("{{ (t | from_json).k[1] }}", {"t": '{"k": [1, 2]}'}) == "2"
    with pytest.raises(TemplateError) as info:
        render("{{ t | from_json }}", {"t": "{bad" + "x" * 500})
    text = info.value.message
    assert "from_json: invalid JSON" in text and "{badxxx" in text and len(text) < 400


def test_lines_split_and_trim() -> None:
    ctx = {"t": "a\r\nb\n\n   \n c \n", "l": ["x", "", "y"]}
    assert render("{{ t | lines }}", ctx) == "['a', 'b', '   ', ' c ']"
    assert render("{{ l | lines }}|{{ none | lines }}", ctx) == "['x', 'y']|[]"
    assert render("{{ ' a  b ' | split }}|{{ 'a=b=c' | split('=', 1) }}", {}) == (
        "['a', 'b']|['a', 'b=c']"
    )
    assert render("[{{ '  x \n' | trim }}]", {}) == "[x]"


def test_default_replaces_undefined_none_and_empty() -> None:
    ctx = {"e": "", "n": None, "z": 0, "f": False, "l": [], "s": "v"}
    template = (
        "{{ e | default('d') }} {{ n | default('d') }} {{ u | default('d') }} {{ l | d('d') }}"
    )
    assert render(template, ctx) == "d d d d"
    assert render("{{ z | default('d') }} {{ f | default('d') }} {{ s | default('d') }}", ctx) == (
        "0 False v"
    )
    assert render("{{ z | default('d', true) }}", ctx) == "d"


def test_builtin_filters_remain() -> None:
    assert render("{{ ['b', 'a'] | sort | join('-') | upper }}", {}) == "A-B"


def test_step_references_come_from_the_ast() -> None:
    template = (
        "{{ steps.a.output }} {{ steps['b'] }} {{ steps[\"c\"].x | lines }} {{ 'steps.d' }}"
        "{% for s in steps.e.items %}{{ s }}{% endfor %}{{ steps[name] }}{{ other.steps.f }}"
        "{% if steps.g.failed %}{% endif %}"
    )
    assert step_references(template) == {"a", "b", "c", "e", "g"}
    assert step_references("steps.list.output | lines", expression=True) == {"list"}
    assert step_references("team == 'rust'", expression=True) == set()
    with pytest.raises(TemplateError):
        step_references("{{ steps.a ")
