"""``llm-mux run``: lookup, args, output modes, the saved output, input steps, secrets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.fakes.wf_project import document, shell_steps, write_config, write_workflow

HELLO = """
name = "hello"
description = "say hello"

[args.who]
description = "who to greet"
default = "world"

[[steps]]
name = "greet"
type = "shell"
run = "echo hello {{ args.who }}"
"""


def test_lookup_walks_up_to_the_nearest_project(cli, tmp_path: Path) -> None:
    project = Path.cwd()
    write_workflow(project, "hello", HELLO)
    sub = project / "src" / "deep"
    sub.mkdir(parents=True)
    result = cli("run", "hello", cwd=sub)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "hello world\n"


def test_lookup_in_user_dir_and_by_path(cli, isolated_home: Path, tmp_path: Path) -> None:
    user = isolated_home / ".config" / "llm-mux" / "workflows"
    user.mkdir(parents=True)
    (user / "mine.toml").write_text(HELLO, encoding="utf-8")
    assert cli("run", "mine", "who=me").stdout == "hello me\n"
    other = tmp_path / "elsewhere.toml"
    other.write_text(HELLO.replace("hello {{", "hi {{"), encoding="utf-8")
    assert cli("run", str(other)).stdout == "hi world\n"


def test_project_workflow_wins_over_the_user_one(cli, isolated_home: Path) -> None:
    user = isolated_home / ".config" / "llm-mux" / "workflows"
    user.mkdir(parents=True)
    (user / "hello.toml").write_text(HELLO.replace("hello {{", "user {{"), encoding="utf-8")
    write_workflow(Path.cwd(), "hello", HELLO)
    assert cli("run", "hello").stdout == "hello world\n"


def test_unknown_workflow_lists_the_available_ones(cli) -> None:
    write_workflow(Path.cwd(), "hello", HELLO)
    write_workflow(Path.cwd(), "review", HELLO)
    result = cli("run", "helo")
    assert result.exit_code == 2
    assert "unknown workflow 'helo' (did you mean 'hello'?)" in result.stderr
    assert "review" in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr


def test_args_unknown_missing_and_malformed(cli) -> None:
    write_workflow(
        Path.cwd(),
        "wf",
        '[args.file]\nrequired = true\ndescription = "the file to review"\n'
        + shell_steps(("s", "echo {{ args.file }}")),
    )
    missing = cli("run", "wf")
    assert missing.exit_code == 2
    assert "'file' (the file to review)" in missing.stderr
    unknown = cli("run", "wf", "file=x", "flie=y")
    assert unknown.exit_code == 2 and "did you mean 'file'" in unknown.stderr
    assert cli("run", "wf", "file").exit_code == 2
    assert cli("run", "wf", "file=a b;c").stdout == "a b;c\n"


def test_json_output_is_one_document(cli, tmp_path: Path) -> None:
    write_workflow(Path.cwd(), "hello", HELLO)
    result = cli("run", "hello", "--output", "json", "--config", str(write_config(tmp_path)))
    assert result.exit_code == 0, result.stderr
    doc = document(result.stdout)
    assert set(doc) == {"workflow", "run_id", "success", "duration_ms", "output", "error", "steps"}
    assert doc["workflow"] == "hello" and doc["success"] is True and doc["error"] is None
    step = doc["steps"]["greet"]
    assert step["output"] == "hello world" and step["exit_code"] == 0
    assert step["failed"] is False and step["skipped"] is False
    assert isinstance(step["duration_ms"], int)


def test_quiet_prints_only_the_final_output(cli) -> None:
    write_workflow(Path.cwd(), "hello", HELLO)
    result = cli("--quiet", "run", "hello")
    assert result.exit_code == 0
    assert result.stdout == "hello world\n"
    assert result.stderr == ""


def test_console_saves_the_output_privately(cli) -> None:
    write_workflow(Path.cwd(), "hello", HELLO)
    result = cli("run", "hello")
    assert result.stdout == "hello world\n"
    assert "[greet] done" in result.stderr  # plain progress lines: stderr is not a terminal
    line = next(x for x in result.stderr.splitlines() if x.startswith("output saved to "))
    saved = Path(line.removeprefix("output saved to "))
    assert saved.read_text() == "hello world"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700


def test_final_output_is_the_last_step_that_ran_in_file_order(cli) -> None:
    text = shell_steps(("first", "echo one"), ("second", "echo two"))
    text += '[[steps]]\nname = "third"\ntype = "shell"\nrun = "echo three"\nif = "false"\n'
    write_workflow(Path.cwd(), "wf", text)
    assert cli("run", "wf").stdout == "two\n"


def test_output_template_makes_the_final_output(cli) -> None:
    text = 'output = "{{ steps.a.output }}+{{ steps.b.output }}"\n'
    text += shell_steps(("a", "echo A"), ("b", "echo B"))
    write_workflow(Path.cwd(), "wf", text)
    result = cli("run", "wf", "-o", "json")
    assert document(result.stdout)["output"] == "A+B"


def test_template_context_has_workflow_env_team_and_ecosystem(cli, tmp_path: Path) -> None:
    run = "echo {{ workflow.name }} {{ env.WF_GREETING }} [{{ team }}] [{{ ecosystem.name }}]"
    write_workflow(Path.cwd(), "ctx", shell_steps(("s", run)))
    config = write_config(tmp_path, '[teams.py]\ndetect = ["setup.py"]\n')
    (Path.cwd() / "setup.py").write_text("")
    result = cli("run", "ctx", "--config", str(config), env={"WF_GREETING": "hi"})
    assert result.stdout == "ctx hi [py] []\n", result.stderr
    env = {"WF_GREETING": "yo"}
    forced = cli("run", "ctx", "--config", str(config), "--team", "none", env=env)
    assert forced.stdout == "ctx yo [] []\n"


def test_input_steps_take_the_default_when_not_interactive(cli) -> None:
    text = """
[[steps]]
name = "ask"
type = "input"
prompt = "Proceed?"
options = ["yes", "no"]
default = "yes"

[[steps]]
name = "use"
type = "shell"
run = "echo answer={{ steps.ask.output }}"
depends_on = ["ask"]
"""
    write_workflow(Path.cwd(), "wf", text)
    assert cli("run", "wf").stdout == "answer=yes\n"
    write_workflow(Path.cwd(), "nodefault", text.replace('default = "yes"\n', ""))
    result = cli("run", "nodefault", "-o", "json")
    assert result.exit_code == 1
    doc = document(result.stdout)
    assert "not interactive" in doc["steps"]["ask"]["error"]
    assert doc["steps"]["use"]["skipped"] is True


def test_input_step_asks_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import subprocess

    from tests.conftest import llm_mux_executable

    write_workflow(
        Path.cwd(),
        "wf",
        '[[steps]]\nname = "ask"\ntype = "input"\nprompt = "Colour?"\noptions = ["red", "blue"]\n',
    )
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [llm_mux_executable(), "run", "wf"],
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    os.write(controller, b"2\n")
    out, err = proc.communicate(timeout=30)
    os.close(controller)
    assert proc.returncode == 0, err
    assert out == "blue\n"
    assert "Colour?" in err and "2) blue" in err


def test_secrets_are_masked_in_every_output(cli, tmp_path: Path) -> None:
    fake = Path(__file__).resolve().parent.parent / "fakes" / "wf_env.sh"
    extra = f'[backends.envy]\ncommand = "{fake}"\nenv = {{ WF_TOKEN = "${{WF_TEST_TOKEN}}" }}\n'
    config = write_config(tmp_path, extra)
    text = '[[steps]]\nname = "q"\ntype = "query"\nbackend = "envy"\nprompt = "hi"\n'
    write_workflow(Path.cwd(), "wf", text)
    token = "tok-very-secret-1234"
    env = {"WF_TEST_TOKEN": token}
    for mode in ("console", "json", "quiet"):
        result = cli("run", "wf", "-o", mode, "--config", str(config), env=env)
        assert result.exit_code == 0, result.stderr
        assert token not in result.stdout + result.stderr
        assert "token=***" in result.stdout
    saved_dir = next(Path("/tmp").glob(f"llm-mux-{os.getuid()}"), None)
    if saved_dir is not None:
        for path in saved_dir.glob("wf-*.txt"):
            assert token not in path.read_text()
