"""Config files as the seed writes them: keys that mean nothing for a type, several --config."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.wf_project import write_workflow

SEED_BACKEND_OPTIONS = """[backends.example]
command = "claude"           # CLI command or HTTP URL
args = ["-p"]                # arguments for CLI backends
model = "gpt-4"              # model name for HTTP backends
api_key = "${ENV_VAR}"       # API key (supports env vars)
enabled = true               # enable/disable
timeout = 300                # seconds
max_retries = 3              # retry attempts
retry_delay = 1000           # base delay in ms (exponential backoff)
retry_rate_limit = true      # auto-retry on rate limits
retry_timeout = false        # auto-retry on timeouts
"""

IGNORED = "backend 'example': key '{}' applies only to backends of type"


def test_seed_backend_options_load_with_a_warning_per_ignored_key(cli, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(SEED_BACKEND_OPTIONS)
    listed = cli("backends", "-o", "json", "--config", str(config))
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.stdout)["backends"]["example"]["command"] == "claude"
    assert "applies only" not in listed.stderr  # quiet unless asked (--debug, validate, doctor)
    debug = cli("--debug", "backends", "--config", str(config))
    assert IGNORED.format("model") in debug.stderr and IGNORED.format("api_key") in debug.stderr
    doctor = cli("doctor", "-o", "json", "--config", str(config))
    assert IGNORED.format("api_key") in doctor.stderr
    warnings = json.loads(doctor.stdout)["backends"]["example"]["warnings"]
    assert len(warnings) == 2 and "it is ignored" in warnings[0]
    write_workflow(Path.cwd(), "wf", '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    checked = cli("validate", "wf", "--config", str(config))
    assert checked.exit_code == 0, checked.stderr
    assert IGNORED.format("model") in checked.stderr


def test_unknown_keys_stay_errors(cli, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(SEED_BACKEND_OPTIONS + "modle = 'x'\n")
    result = cli("backends", "--config", str(config))
    assert result.exit_code == 2
    assert "unknown key 'modle'" in result.stderr and "'model'" in result.stderr


def test_several_config_options_merge_in_order(cli, tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text("[backends.a]\ncommand = 'a-cli'\n[backends.shared]\ncommand = 'one'\n")
    second.write_text("[backends.b]\ncommand = 'b-cli'\n[backends.shared]\ncommand = 'two'\n")
    for args in (
        ["--config", str(first), "--config", str(second), "backends"],
        ["--config", str(first), "backends", "--config", str(second)],
        ["backends", "-c", str(first), "-c", str(second)],
    ):
        result = cli(*args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        backends = json.loads(result.stdout)["backends"]
        assert list(backends) == ["a", "shared", "b"]
        assert backends["shared"]["command"] == "two"
