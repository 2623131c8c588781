"""Secrets holding quotes, backslashes and unicode never reach any output, in any encoding."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.server import FakeLLMServer, error
from tests.fakes.wf_project import write_config, write_workflow
from tests.unit.test_secret_forms import leaks

FAKES = Path(__file__).resolve().parent.parent / "fakes"
SECRETS = ['tok-"quo\\ted"-é-ключ-😀-5f1e', "tok-\\\\back'slash/<&>-9a0b"]
HEADER_SECRETS = ['sk-"quo\\ted"-<&>/x-5f1e', "sk-\\\\back'slash-9a0b"]  # printable ASCII

_ENV = 'os.environ["WF_TEST_TOKEN"]'
PRINTERS = {
    "raw": 'printf "%s\\n" "$WF_TEST_TOKEN"',
    "json": f"""python3 -c 'import json,os; print(json.dumps({{"k": {_ENV}}}))'""",
    "json-utf8": f"""python3 -c 'import json,os; print(json.dumps({_ENV}, ensure_ascii=False))'""",
    "url": f"""python3 -c 'import os,urllib.parse as u; print(u.quote({_ENV}, safe=""))'""",
    "base64": 'printf "%s" "$WF_TEST_TOKEN" | base64 -w0',
}


def strings(value: Any) -> Iterator[str]:
    """Every string in a decoded JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def assert_clean(secret: str, text: str) -> None:
    assert leaks(secret, text) == [], text[:2000]
    if text.strip().startswith("{"):
        document = json.loads(text)
        assert all(leaks(secret, s) == [] for s in strings(document))


def workflow() -> str:
    steps = ['[[steps]]\nname = "q"\ntype = "query"\nbackend = "envy"\nprompt = "hi"\n']
    for name, command in PRINTERS.items():
        steps.append(
            f'[[steps]]\nname = "{name}"\ntype = "shell"\ndepends_on = ["q"]\n'
            f"run = {json.dumps(command)}\n"
        )
    return "".join(steps)


@pytest.mark.parametrize("secret", SECRETS)
def test_run_outputs_records_and_files_hold_no_spelling_of_the_key(
    cli, tmp_path: Path, isolated_home: Path, secret: str
) -> None:
    extra = (
        f'[backends.envy]\ncommand = "{FAKES / "wf_env.sh"}"\n'
        'env = { WF_TOKEN = "${WF_TEST_TOKEN}" }\n'
    )
    config = write_config(tmp_path, extra)
    write_workflow(Path.cwd(), "leak", workflow())
    env = {"WF_TEST_TOKEN": secret}
    for mode in ("json", "console", "quiet"):
        result = cli("run", "leak", "-o", mode, "--debug", "--config", str(config), env=env)
        assert result.exit_code == 0, result.stderr
        assert_clean(secret, result.stdout)
        assert_clean(secret, result.stderr)
        if mode == "json":
            steps = json.loads(result.stdout)["steps"]
            assert "***" in steps["raw"]["output"] and "***" in steps["json"]["output"]
        if mode == "console":  # this run's saved output (the directory is shared)
            saved = re.search(r"output saved to (\S+)", result.stderr)
            assert saved is not None, result.stderr
            assert_clean(secret, Path(saved.group(1)).read_text(encoding="utf-8"))
    for database in (isolated_home / ".config" / "llm-mux").rglob("*.db"):
        with sqlite3.connect(database) as conn:
            dump = "\n".join(conn.iterdump())
        assert_clean(secret, dump)
        assert leaks(secret, database.read_bytes().decode("utf-8", "replace")) == []


def api_config(tmp_path: Path, server: FakeLLMServer) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[backends.api]\ncommand = "{server.url}/v1"\nmodel = "m"\n'
        'api_key = "${LEAK_TEST_KEY}"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize("secret", HEADER_SECRETS)
def test_ask_json_of_an_error_echoing_the_key(
    cli, tmp_path: Path, llm_server: FakeLLMServer, secret: str
) -> None:
    config = api_config(tmp_path, llm_server)
    for mode in ("json", "console"):
        llm_server.script(error(401, f"invalid api key: Bearer {secret}"))
        result = cli(
            "ask",
            "api",
            "hi",
            "-o",
            mode,
            "--debug",
            "--config",
            str(config),
            env={"LEAK_TEST_KEY": secret},
        )
        assert result.exit_code == 1, result.stderr
        assert_clean(secret, result.stdout)
        assert_clean(secret, result.stderr)
        assert "401" in result.stdout + result.stderr


@pytest.mark.parametrize("secret", [SECRETS[0], "sk-line\nbreak-1234"])
def test_a_key_no_header_can_carry_is_a_clear_error(
    cli, tmp_path: Path, llm_server: FakeLLMServer, secret: str
) -> None:
    config = api_config(tmp_path, llm_server)
    for mode in ("json", "console"):
        result = cli(
            "ask", "api", "hi", "-o", mode, "--config", str(config), env={"LEAK_TEST_KEY": secret}
        )
        assert result.exit_code == 1, result.stderr  # the backend is unavailable
        assert "api_key of backend 'api' holds characters" in result.stdout + result.stderr
        assert "internal error" not in result.stdout + result.stderr
        assert_clean(secret, result.stdout)
        assert_clean(secret, result.stderr)
    assert llm_server.requests == []
