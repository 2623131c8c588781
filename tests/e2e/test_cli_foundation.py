"""The CLI boundary end to end: version, help, global options anywhere, listings, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_mux import __version__

SEED_CONFIG = Path(__file__).resolve().parent.parent / "data" / "seed_config.toml"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"llm-mux {__version__}"
    assert cli("-V").stdout.strip() == f"llm-mux {__version__}"


def test_help_lists_commands_with_examples(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("backends", "roles", "teams", "ecosystems", "doctor"):
        assert command in result.stdout
    assert "Examples:" in result.stdout


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "llm_mux", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert __version__ in proc.stdout


@pytest.mark.parametrize("command", ["backends", "roles", "teams", "ecosystems"])
def test_listings_as_json_before_or_after_subcommand(cli, command: str) -> None:
    after = cli(command, "--output", "json", "--config", str(SEED_CONFIG))
    before = cli("--output", "json", "--config", str(SEED_CONFIG), command)
    assert after.exit_code == 0, after.stderr
    assert after.stdout == before.stdout
    document = json.loads(after.stdout)
    assert list(document) == [command]


def test_backends_json_resolves_types_and_hides_nothing_secret(cli) -> None:
    env = {"OPENAI_API_KEY": "sk-planted-secret-value-123"}
    result = cli("backends", "-o", "json", "--config", str(SEED_CONFIG), env=env)
    data = json.loads(result.stdout)["backends"]
    assert data["openai"]["type"] == "openai"
    assert data["claude"]["args"] == ["-p"]
    assert data["openai"]["api_key"] == "${OPENAI_API_KEY}"
    assert "sk-planted" not in result.output


def test_console_tables_are_readable(cli) -> None:
    result = cli("roles", "--config", str(SEED_CONFIG))
    assert result.exit_code == 0
    assert "analyzer" in result.stdout and "parallel" in result.stdout
    teams = cli("teams", "--config", str(SEED_CONFIG))
    assert "Cargo.toml" in teams.stdout and "cargo clippy" in teams.stdout
    ecosystems = cli("ecosystems", "--config", str(SEED_CONFIG))
    assert "myapp" in ecosystems.stdout and "worker" in ecosystems.stdout


def test_quiet_listing_prints_names(cli) -> None:
    result = cli("--quiet", "backends", "--config", str(SEED_CONFIG))
    assert result.stdout.split() == ["claude", "codex", "ollama", "openai", "local"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[backends.x]\ncommand = 'x'\n[roles.r]\nbackends = [\n", "bad.toml:4"),
        ("[backends.x]\ncommand = 'x'\nargz = []\n", "did you mean 'args'"),
        ("[backends.x]\ncommand = 'x'\n[roles.r]\nbackends = ['nope']\n", "unknown backend 'nope'"),
        (
            "[backends.x]\ncommand='x'\n[roles.r]\nbackends=['x']\nexecution='all'\n",
            "allowed values are 'first', 'parallel' or 'fallback'",
        ),
        (
            "[backends.x]\ncommand='x'\n[teams.t]\n[teams.t.roles.missing]\nbackends=['x']\n",
            "unknown role 'missing'",
        ),
    ],
)
def test_bad_config_exits_2_without_traceback_and_writes_nothing(
    cli, tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    home = Path(os.environ["HOME"])
    before = snapshot(home) | snapshot(tmp_path / "work")
    result = cli("roles", "--config", str(path))
    assert result.exit_code == 2
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert snapshot(home) | snapshot(tmp_path / "work") == before


def test_debug_shows_traceback_for_errors(cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[backends.x]\ncommand = 'x'\nargz = []\n")
    result = cli("--debug", "roles", "--config", str(path))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_unknown_command_suggests(cli) -> None:
    result = cli("rols")
    assert result.exit_code == 2
    assert "did you mean 'roles'" in result.stderr


def test_bad_output_mode_is_usage_error(cli) -> None:
    result = cli("roles", "--output", "yaml")
    assert result.exit_code == 2
    assert "console" in result.stderr


def test_project_config_found_walking_up(cli, tmp_path: Path) -> None:
    project = tmp_path / "work" / "proj"
    (project / ".llm-mux").mkdir(parents=True)
    (project / ".llm-mux" / "config.toml").write_text("[backends.p]\ncommand = 'p-cli'\n")
    nested = project / "a" / "b"
    nested.mkdir(parents=True)
    result = cli("backends", "-o", "json", cwd=nested)
    assert "p" in json.loads(result.stdout)["backends"]


def test_user_config_from_xdg(cli) -> None:
    config_dir = Path(os.environ["XDG_CONFIG_HOME"]) / "llm-mux"
    config_dir.mkdir(parents=True)
    (config_dir / "config.toml").write_text("[backends.u]\ncommand = 'u-cli'\n")
    result = cli("backends", "-o", "json")
    assert list(json.loads(result.stdout)["backends"]) == ["u"]
