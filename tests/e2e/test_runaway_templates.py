"""A runaway template never holds the run: timeouts and signals stop it, the error names it.

Each template here would render for hours (10^10 loop iterations, 2^60 macro calls); the
real CLI must still honour the step timeout, the workflow timeout, SIGINT and SIGTERM.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.fakes.wf_project import document, interrupt, start, write_config, write_workflow

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
SILENT = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
RECURSIVE = (
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
)
# A promise of 1 s (or 2 s for signals), bounded at twice that plus CLI start-up on a busy machine.
BOUND_S = 6.0


def step(kind: str, field: str, template: str, extra: str = "") -> str:
    target = 'backend = "echo"\n' if kind == "query" else ""
    return (
        f'[[steps]]\nname = "slow"\ntype = "{kind}"\n{target}{extra}'
        f"{field} = {json.dumps(template)}\n"
    )


def timed(cli, *args: str):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = cli(*args, timeout=60)
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("kind", "field", "template"),
    [
        ("shell", "run", NESTED),
        ("shell", "run", RECURSIVE),
        ("query", "prompt", SILENT),
        ("store", "prompt", NESTED),
    ],
)
def test_a_step_timeout_stops_a_runaway_template(
    cli, tmp_path: Path, kind: str, field: str, template: str
) -> None:
    write_workflow(Path.cwd(), "wf", step(kind, field, template, 'timeout = "1s"\n'))
    config = str(write_config(tmp_path))
    result, took = timed(cli, "run", "wf", "--config", config, "--output", "json")
    assert result.exit_code == 1, result.stderr
    assert took < BOUND_S
    error = document(result.stdout)["steps"]["slow"]["error"]
    assert error == f"timed out after 1s while rendering its {field} template"


def test_a_workflow_timeout_stops_a_runaway_template(cli, tmp_path: Path) -> None:
    text = 'timeout = "1s"\n' + step("query", "prompt", NESTED)
    write_workflow(Path.cwd(), "wf", text)
    config = str(write_config(tmp_path))
    result, took = timed(cli, "run", "wf", "--config", config, "--output", "json")
    assert result.exit_code == 1 and took < BOUND_S
    doc = document(result.stdout)
    assert doc["error"] == "workflow timed out after 1s"
    assert doc["steps"]["slow"]["status"] == "cancelled"
    assert "while rendering its prompt template" in doc["steps"]["slow"]["error"]


def test_a_runaway_output_template_is_bounded_by_the_workflow_timeout(cli, tmp_path: Path) -> None:
    text = f'timeout = "1s"\noutput = {json.dumps(NESTED)}\n' + step("shell", "run", "echo ok")
    write_workflow(Path.cwd(), "wf", text)
    config = str(write_config(tmp_path))
    result, took = timed(cli, "run", "wf", "--config", config, "--output", "json")
    assert result.exit_code == 1 and took < BOUND_S
    doc = document(result.stdout)
    assert doc["output"] == "ok"
    assert doc["error"] == "output template failed: timed out while rendering"


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("template", [NESTED, SILENT, RECURSIVE])
def test_a_signal_stops_a_runaway_template(
    tmp_path: Path, signum: int, code: int, template: str
) -> None:
    marker = tmp_path / "started"
    text = step("shell", "run", "touch " + str(marker) + "\n" + template)
    text = (
        f'[[steps]]\nname = "first"\ntype = "shell"\nrun = "touch {marker}"\n\n'
        + step("shell", "run", template)
        + 'depends_on = ["first"]\n'
    )
    write_workflow(Path.cwd(), "wf", text)
    proc = start(["run", "wf", "--output", "json"], Path.cwd())
    deadline = time.monotonic() + 30
    while not marker.exists():  # the first step ran: the runaway one is rendering
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    time.sleep(0.3)
    elapsed, out, err = interrupt(proc, signum)
    assert proc.returncode == code, err
    assert elapsed < 4.0  # the promise is 2 s; twice that on a busy machine
    doc = document(out)
    assert doc["steps"]["first"]["status"] == "success"
    assert doc["steps"]["slow"]["status"] == "cancelled"
    assert "while rendering its run template" in doc["steps"]["slow"]["error"]
    assert "Traceback" not in err


def test_rendered_text_over_the_output_cap_fails_naming_the_field(cli, tmp_path: Path) -> None:
    big = "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}"  # 10 MB
    write_workflow(Path.cwd(), "wf", step("query", "prompt", big))
    config = str(write_config(tmp_path, "[defaults]\nmax_output_mb = 1\n"))
    result, took = timed(cli, "run", "wf", "--config", config, "--output", "json")
    assert result.exit_code == 1 and took < BOUND_S * 2
    error = document(result.stdout)["steps"]["slow"]["error"]
    assert error.startswith("prompt: the rendered text is over 1 MiB"), error


@pytest.mark.parametrize(
    "template", ["{{ 10 ** 100000000 }}", "{{ 'x' * 1000000000 }}", "{{ [0] * 10 ** 9 }}"]
)
def test_expressions_too_large_to_compute_are_refused(cli, tmp_path: Path, template: str) -> None:
    write_workflow(Path.cwd(), "wf", step("query", "prompt", template))
    config = str(write_config(tmp_path))
    result, took = timed(cli, "run", "wf", "--config", config, "--output", "json")
    assert result.exit_code == 1 and took < BOUND_S
    error = document(result.stdout)["steps"]["slow"]["error"]
    assert error.startswith("prompt: line 1: not allowed in a template:"), error


def test_validate_does_not_hang_on_a_runaway_shell_template(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "wf", step("shell", "run", NESTED))
    config = str(write_config(tmp_path))
    result, took = timed(cli, "validate", "wf", "--config", config)
    assert result.exit_code == 0, result.stderr
    assert took < BOUND_S


def test_templates_that_finish_still_render_exactly(cli, tmp_path: Path) -> None:
    loops = "{% for i in range(3) %}{{ i }}/{{ loop.length }} {% endfor %}{{ 2 ** 10 }}"
    write_workflow(Path.cwd(), "wf", step("query", "prompt", loops))
    config = str(write_config(tmp_path))
    result = cli("run", "wf", "--config", config, "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert document(result.stdout)["output"] == "0/3 1/3 2/3 1024"
