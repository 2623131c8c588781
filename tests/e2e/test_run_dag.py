"""The runner end to end: concurrency, if, for_each, failures, retries, timeouts, limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.wf_project import document, write_config, write_workflow


def run_json(cli: Any, text: str, *args: str, config: str = "") -> tuple[int, dict[str, Any]]:
    write_workflow(Path.cwd(), "wf", text)
    extra = ("--config", config) if config else ()
    result = cli("run", "wf", "-o", "json", *extra, *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, document(result.stdout)


def step(name: str, run: str, **keys: Any) -> str:
    extra = "".join(f"{k.replace('when', 'if')} = {json.dumps(v)}\n" for k, v in keys.items())
    return f'[[steps]]\nname = "{name}"\ntype = "shell"\nrun = {json.dumps(run)}\n{extra}'


def test_independent_steps_run_concurrently(cli) -> None:
    text = step("a", "sleep 0.6; date +%s%N") + step("b", "sleep 0.6; date +%s%N")
    text += step("c", "echo {{ steps.a.output }} {{ steps.b.output }}", depends_on=["a", "b"])
    code, doc = run_json(cli, text)
    assert code == 0
    a, b = int(doc["steps"]["a"]["output"]), int(doc["steps"]["b"]["output"])
    assert abs(a - b) < 400_000_000  # finished within 0.4 s of each other: they overlapped
    assert doc["steps"]["c"]["output"] == f"{a} {b}"


def test_jobs_limits_concurrency(cli) -> None:
    text = step("a", "sleep 0.4; date +%s%N") + step("b", "sleep 0.4; date +%s%N")
    write_workflow(Path.cwd(), "wf", text)
    doc = document(cli("run", "wf", "-o", "json", "--jobs", "1").stdout)
    a, b = (int(doc["steps"][n]["output"]) for n in "ab")
    assert b - a >= 350_000_000  # b ran after a


def test_a_step_starts_only_after_its_dependencies(cli) -> None:
    text = step("slow", "sleep 0.3; echo slow") + step("fast", "echo fast")
    text += step(
        "after", "echo {{ steps.slow.output }}-{{ steps.fast.output }}", depends_on=["slow", "fast"]
    )
    _code, doc = run_json(cli, text)
    assert doc["steps"]["after"]["output"] == "slow-fast"
    assert doc["output"] == "slow-fast"


def test_if_false_skips_and_dependents_see_skipped(cli) -> None:
    text = step("maybe", "echo ran", when="args.go == 'yes'")
    text += step(
        "next",
        "echo skipped={{ steps.maybe.skipped }} out=[{{ steps.maybe.output }}]",
        depends_on=["maybe"],
    )
    code, doc = run_json(cli, text, "go=no")
    assert code == 0
    assert doc["steps"]["maybe"]["skipped"] is True
    assert doc["steps"]["next"]["output"] == "skipped=True out=[]"
    code, doc = run_json(cli, text, "go=yes")
    assert doc["steps"]["next"]["output"] == "skipped=False out=[ran]"


def test_for_each_keeps_input_order_and_loop_index(cli) -> None:
    text = step("list", "printf 'c\\nb\\n\\na\\n'")
    text += step(
        "each",
        "n={{ loop.index }}; sleep 0.0$((3 - n)); echo $n:{{ item }}",
        for_each="steps.list.output | lines",
        depends_on=["list"],
    )
    _code, doc = run_json(cli, text)
    each = doc["steps"]["each"]
    assert each["output"] == "1:c\n2:b\n3:a"
    assert [i["item"] for i in each["items"]] == ["c", "b", "a"]
    assert [i["output"] for i in each["items"]] == ["1:c", "2:b", "3:a"]


def test_for_each_respects_max_parallel(cli) -> None:
    text = step("each", "sleep 0.3; date +%s%N", for_each="['1','2','3','4']", max_parallel=2)
    _code, doc = run_json(cli, text)
    ends = sorted(int(i["output"]) for i in doc["steps"]["each"]["items"])
    assert ends[2] - ends[0] >= 250_000_000  # the third item waited for a slot


def test_for_each_over_args_split_and_an_empty_list(cli) -> None:
    text = step("each", "echo [{{ item }}]", for_each="args.files | split(',')")
    code, doc = run_json(cli, text, "files=a b,c")
    assert doc["steps"]["each"]["output"] == "[a b]\n[c]"
    code, doc = run_json(cli, step("none", "echo x", for_each="[]") + step("after", "echo ok"))
    assert code == 0
    assert doc["steps"]["none"]["output"] == "" and doc["steps"]["none"]["items"] == []
    assert doc["steps"]["none"]["failed"] is False


def test_for_each_that_is_not_a_list_fails_clearly(cli) -> None:
    code, doc = run_json(cli, step("each", "echo {{ item }}", for_each="'abc'"))
    assert code == 1
    assert "for_each must give a list" in doc["steps"]["each"]["error"]


def test_failure_stops_the_run(cli) -> None:
    text = step("bad", "echo partial; echo oops >&2; exit 3") + step("running", "sleep 5")
    text += step("later", "echo never", depends_on=["bad"])
    code, doc = run_json(cli, text)
    assert code == 1 and doc["success"] is False
    bad = doc["steps"]["bad"]
    assert bad["failed"] is True and bad["exit_code"] == 3
    assert "code 3" in bad["error"] and "oops" in bad["error"] and bad["output"] == "partial"
    assert doc["steps"]["later"]["skipped"] is True
    assert doc["steps"]["running"]["failed"] is True  # cancelled
    assert doc["steps"]["running"]["status"] == "cancelled"
    assert "step 'bad' failed" in doc["error"]
    assert doc["duration_ms"] < 4000


def test_continue_on_error_lets_dependents_run(cli) -> None:
    text = step("bad", "exit 2", continue_on_error=True)
    text += step("next", "echo failed={{ steps.bad.failed }}", depends_on=["bad"])
    code, doc = run_json(cli, text)
    assert code == 0 and doc["success"] is True
    assert doc["steps"]["next"]["output"] == "failed=True"
    code, doc = run_json(
        cli, "continue_on_error = true\n" + step("bad", "exit 2") + step("b", "echo b")
    )
    assert code == 0 and doc["steps"]["b"]["output"] == "b"


def test_retries_wrap_the_step(cli, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    run = f"echo x >> {counter}; test $(wc -l < {counter}) -ge 3"
    code, _doc = run_json(cli, step("flaky", run, retries=2, retry_delay="10ms"))
    assert code == 0 and counter.read_text().count("x") == 3
    counter.unlink()
    code, _doc = run_json(cli, step("flaky", run, retries=1, retry_delay=10))
    assert code == 1 and counter.read_text().count("x") == 2


def test_step_timeout_bounds_retries_too(cli) -> None:
    code, doc = run_json(cli, step("slow", "sleep 5", timeout="400ms", retries=5, retry_delay=10))
    assert code == 1
    assert "timed out after 400ms" in doc["steps"]["slow"]["error"]
    assert doc["duration_ms"] < 3000


def test_workflow_timeout(cli) -> None:
    code, doc = run_json(
        cli,
        'timeout = "500ms"\n' + step("slow", "sleep 5") + step("b", "sleep 5", depends_on=["slow"]),
    )
    assert code == 1
    assert "workflow timed out after 500ms" in doc["error"]
    assert doc["steps"]["slow"]["status"] == "cancelled"
    assert doc["steps"]["b"]["skipped"] is True


def test_output_cap_fails_naming_it(cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, "[defaults]\nmax_output_mb = 1\n")
    text = step("big", "head -c 3000000 /dev/zero")
    code, doc = run_json(cli, text, config=str(config))
    assert code == 1
    assert "max_output_mb" in doc["steps"]["big"]["error"]


def test_nul_byte_in_a_value_names_the_step(cli) -> None:
    code, _doc = run_json(cli, step("nul", "echo {{ args.x }}"), "x=a\x01b")
    assert code == 0  # control characters are fine
    write_workflow(Path.cwd(), "wf", step("nul", "echo {{ '\\x00' }}"))
    result = cli("run", "wf", "-o", "json")
    assert result.exit_code == 1
    doc = document(result.stdout)
    assert "NUL" in doc["steps"]["nul"]["error"]
    assert "step 'nul' failed" in doc["error"] and "NUL" in doc["error"]
    assert "step 'nul' failed" in result.stderr


def test_values_reach_the_command_exactly(cli) -> None:
    nasty = "$(echo pwned) `id` 'q' \"dq\" \\ ;|&"
    text = step("a", "printf '%s' {{ args.v }}; printf '|%s' \"{{ args.v }}\"")
    _code, doc = run_json(cli, text, f"v={nasty}")
    assert doc["steps"]["a"]["output"] == f"{nasty}|{nasty}"


def test_command_wrapper_gets_one_argument(cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, '[defaults]\ncommand_wrapper = "sh -c"\n')
    text = step("a", "printf '%s' {{ args.v }}")
    code, doc = run_json(cli, text, "v=$(echo pwned) 'x'", config=str(config))
    assert code == 0
    assert doc["steps"]["a"]["output"] == "$(echo pwned) 'x'"


def test_shell_steps_run_in_the_project_dir(cli) -> None:
    project = Path.cwd()
    (project / ".llm-mux").mkdir()
    sub = project / "sub"
    sub.mkdir()
    write_workflow(project, "wf", step("where", "pwd"))
    result = cli("run", "wf", cwd=sub)
    assert result.stdout.strip() == str(project.resolve())


def test_large_values_pass_between_steps(cli) -> None:
    text = step("big", "head -c 300000 /dev/zero | tr '\\0' 'x'")
    text += step("size", "printf '%s' {{ steps.big.output }} | wc -c", depends_on=["big"])
    code, doc = run_json(cli, text)
    assert code == 0, doc["error"]
    assert doc["steps"]["size"]["output"].strip() == "300000"
