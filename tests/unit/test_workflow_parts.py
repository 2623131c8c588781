"""Small parts of the workflow engine: durations, args, results, JSON extraction, stdout."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_mux.errors import UsageError
from llm_mux.workflow.context import StepsView, parse_arg_words, resolve_args, with_item
from llm_mux.workflow.durations import format_ms, looks_like_ms, parse_duration, parse_timeout
from llm_mux.workflow.model import Arg, Workflow
from llm_mux.workflow.results import Outputs, StepResult, parse_json, step_document
from llm_mux.workflow.steps.base import StepFailed
from llm_mux.workflow.steps.query import extract_json, validate_answer
from llm_mux.workflow.steps.shell import stdout_text, wrap


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (1500, 1500.0),
        (2.5, 2.5),
        ("500ms", 500.0),
        ("90s", 90_000.0),
        ("3m", 180_000.0),
        ("1h", 3_600_000.0),
        ("1m30s", 90_000.0),
        (" 1.5s ", 1500.0),
    ],
)
def test_durations(value: object, ms: float) -> None:
    assert parse_duration(value) == ms


@pytest.mark.parametrize("value", ["", "90", "s", "10x", "-5s", "1s 2s", 0, -1, True, None, [1]])
def test_invalid_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_timeouts_count_plain_numbers_as_seconds() -> None:
    assert parse_timeout(180) == 180_000 and parse_timeout(0.5) == 500
    assert parse_timeout("500ms") == 500 and parse_timeout("3m") == 180_000
    with pytest.raises(ValueError):
        parse_timeout(0)


def test_millisecond_heuristic_and_format() -> None:
    assert looks_like_ms(1000) and looks_like_ms(30000.0)
    assert not looks_like_ms(180) and not looks_like_ms("5000ms") and not looks_like_ms(True)
    formatted = [format_ms(v) for v in (850, 1500, 60_000, 125_000, 3_600_000, 5_000_000)]
    assert formatted == ["850ms", "1.5s", "1m", "2m05s", "1h", "1h23m20s"]


def workflow(**args: Arg) -> Workflow:
    return Workflow(path=Path("wf.toml"), name="wf", args=dict(args))


def test_arg_words() -> None:
    assert parse_arg_words(["a=1", "b=x=y", "c=", "a=2"]) == {"a": "2", "b": "x=y", "c": ""}
    with pytest.raises(UsageError, match="expected NAME=value"):
        parse_arg_words(["novalue"])
    with pytest.raises(UsageError):
        parse_arg_words(["=x"])


def test_args_defaults_required_and_unknown() -> None:
    wf = workflow(
        file=Arg(required=True, description="the file to check"),
        mode=Arg(default="fast"),
        count=Arg(default=3),
        flag=Arg(default=False),
        note=Arg(),
    )
    values = resolve_args(wf, {"file": "a.py"})
    assert values == {"file": "a.py", "mode": "fast", "count": "3", "flag": "false", "note": ""}
    with pytest.raises(UsageError, match="'file' \\(the file to check\\)"):
        resolve_args(wf, {})
    with pytest.raises(UsageError, match="did you mean 'mode'"):
        resolve_args(wf, {"file": "x", "mdoe": "slow"})


def test_workflow_without_declared_args_takes_any() -> None:
    assert resolve_args(workflow(), {"file": "x"}) == {"file": "x"}


def test_outputs_answer_by_index_name_and_attribute() -> None:
    outputs = Outputs(["one", "two"], ["claude", "codex-x"])
    assert outputs[0] == "one" and outputs["codex-x"] == "two" and outputs.claude == "one"
    assert list(outputs) == ["one", "two"] and "\n".join(outputs) == "one\ntwo"
    with pytest.raises(AttributeError):
        _ = outputs.gemini
    with pytest.raises(KeyError):
        _ = outputs["gemini"]


def test_step_result_json_is_lazy_and_extras_are_attributes() -> None:
    result = StepResult("s", output='{"a": [1, 2]}')
    result.extra = {"applied": ["x.py"]}
    assert result.json == {"a": [1, 2]}
    assert result.applied == ["x.py"]
    doc = step_document(result)
    assert doc["json"] == {"a": [1, 2]} and doc["applied"] == ["x.py"] and not doc["failed"]
    assert parse_json("not json") is None and parse_json("") is None
    assert parse_json(" [1] ") == [1]


def test_steps_view_shows_only_allowed_steps() -> None:
    results = {"a": StepResult("a"), "b": StepResult("b"), "c": StepResult("c")}
    view = StepsView(results, {"a": 0, "b": 1, "c": 2}, 0b101)
    assert list(view) == ["a", "c"] and len(view) == 2 and "b" not in view
    with pytest.raises(KeyError):
        _ = view["b"]


def test_item_context() -> None:
    ctx = with_item({"args": {}}, "x", 1, 3)
    assert ctx["item"] == "x"
    assert ctx["loop"] == {"index": 2, "index0": 1, "first": False, "last": False, "length": 3}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here:\n```json\n{"a": 2}\n```\nbye', {"a": 2}),
        ('Sure! {"a": 3} and {"b": 4}', {"a": 3}),
        ("list: [1, 2] done", [1, 2]),
        ('noise { not json } then {"ok": true}', {"ok": True}),
    ],
)
def test_extract_json(text: str, value: object) -> None:
    assert extract_json(text) == value


def test_extract_json_without_json() -> None:
    with pytest.raises(ValueError):
        extract_json("no json here")


def test_validate_answer_names_the_schema_error() -> None:
    schema = {"type": "object", "required": ["facts"], "properties": {"facts": {"type": "array"}}}
    assert validate_answer('{"facts": []}', schema) == {"facts": []}
    with pytest.raises(StepFailed, match="'facts' is a required property"):
        validate_answer('{"other": 1}', schema)
    with pytest.raises(StepFailed, match="is not of type 'array' \\(at facts\\)"):
        validate_answer('{"facts": 1}', schema)
    with pytest.raises(StepFailed, match="holds no JSON"):
        validate_answer("nothing", schema)


def test_stdout_text_drops_trailing_newlines_only() -> None:
    assert stdout_text(b"  a\nb\n\n") == "  a\nb"
    assert stdout_text(b"x\r\n") == "x"
    assert stdout_text(b"\xff ok") == "\ufffd ok"
    assert stdout_text(b"") == ""


def test_wrap_passes_the_command_as_one_argument() -> None:
    argv = ("sh", "-c", "echo 'a b' $X")
    assert wrap(argv, None) == argv
    wrapped = wrap(argv, "nix-shell --run")
    assert wrapped[:2] == ("nix-shell", "--run") and len(wrapped) == 3
    import shlex

    assert tuple(shlex.split(wrapped[2])) == argv


def test_step_kind_registry() -> None:
    from llm_mux.schema import validate
    from llm_mux.workflow.model import STEP_MODELS
    from llm_mux.workflow.steps import get_kind

    required = {
        "shell": {"run": "true"},
        "query": {"role": "r", "prompt": "p"},
        "apply": {"source": "s"},
        "store": {"prompt": "p"},
        "input": {"prompt": "p"},
    }
    assert set(required) == set(STEP_MODELS)
    for name, model in STEP_MODELS.items():
        assert name == model.KIND
        step = validate(model, {"name": "s", "type": name, **required[name]})
        kind = get_kind(step)
        assert kind is get_kind(step)
        assert type(kind).__module__ == model.IMPLEMENTATION
