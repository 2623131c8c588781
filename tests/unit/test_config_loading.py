"""Config loading: locations, merge rules, validation errors with file/line/did-you-mean."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_mux.config import load_config
from llm_mux.config.expand import expand, missing_variables
from llm_mux.errors import ConfigError
from llm_mux.secrets import redact

SEED_CONFIG = Path(__file__).resolve().parent.parent / "data" / "seed_config.toml"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_config(text: str) -> Path:
    import os

    return write(Path(os.environ["XDG_CONFIG_HOME"]) / "llm-mux" / "config.toml", text)


def test_seed_configuration_loads_completely() -> None:
    config = load_config(SEED_CONFIG)
    assert list(config.backends) == ["claude", "codex", "ollama", "openai", "local"]
    assert config.backends["openai"].kind == "openai"
    assert config.backends["claude"].kind == "cli"
    assert config.backends["openai"].api_key == "${OPENAI_API_KEY}"  # expanded lazily
    assert config.roles["analyzer"].execution == "parallel"
    assert config.roles["quick"].execution == "first"
    assert config.teams["rust"].roles["analyzer"].backends == ["claude", "codex"]
    assert config.teams["rust"].verify == "cargo clippy && cargo test"
    myapp = config.ecosystems["myapp"]
    assert list(myapp.projects) == ["frontend", "api", "database", "worker"]
    assert myapp.projects["worker"].depends_on == ["database", "api"]
    assert len(myapp.knowledge) == 3


def test_user_project_and_explicit_files_merge_per_entry(tmp_path: Path) -> None:
    user_config(
        """
[defaults]
timeout = 100
max_concurrent = 3
[backends.a]
command = "a-cli"
timeout = 5
[backends.b]
command = "b-cli"
[roles.r]
backends = ["a", "b"]
execution = "fallback"
"""
    )
    project = tmp_path / "proj"
    write(
        project / ".llm-mux" / "config.toml",
        """
[defaults]
timeout = 200
[backends.a]
command = "a-project"
[roles.r]
backends = ["b"]
""",
    )
    nested = project / "src" / "deep"
    nested.mkdir(parents=True)
    explicit = write(tmp_path / "ci.toml", "[defaults]\nmax_output_mb = 8\n")
    config = load_config(explicit, cwd=nested)
    assert config.defaults.timeout == 200  # project wins key by key
    assert config.defaults.max_concurrent == 3  # user key kept
    assert config.defaults.max_output_mb == 8  # --config applied last
    assert config.backends["a"].command == "a-project"
    assert config.backends["a"].timeout is None  # the entry was replaced as a whole
    assert config.backends["b"].command == "b-cli"
    assert config.roles["r"].backends == ["b"]
    assert config.roles["r"].execution == "first"  # replaced whole, default mode again
    assert config.project_root == project.resolve()


def test_team_role_list_shorthand(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        """
[backends.a]
command = "a"
[roles.r]
backends = ["a"]
[teams.t]
detect = ["*.gemspec"]
roles.r = ["a"]
""",
    )
    assert load_config(path).teams["t"].roles["r"].backends == ["a"]


@pytest.mark.parametrize(
    ("text", "fragments", "line"),
    [
        ("[backends.x]\ncommand = \n", ["invalid TOML"], 2),
        ("[backends.x]\ncommand = 'x'\ntimout = 3\n", ["unknown key 'timout'", "'timeout'"], 3),
        ("[backends.x]\ncommand = 'x'\n[roles.r]\nbackends = ['y']\n", ["unknown backend 'y'"], 4),
        (
            "[backends.x]\ncommand = 'x'\n[roles.r]\nbackends = ['x']\nexecution = 'paralel'\n",
            ["'first', 'parallel' or 'fallback'", "execution"],
            5,
        ),
        (
            "[backends.x]\ncommand = 'x'\n[roles.r]\nbackends=['x']\n"
            "[teams.t]\ndetect=['a']\n[teams.t.roles.rr]\nbackends=['x']\n",
            ["unknown role 'rr'", "did you mean 'r'"],
            7,
        ),
        ("[backend.x]\ncommand = 'x'\n", ["unknown table 'backend'", "'backends'"], None),
        ("[backends.h]\ncommand = 'http://127.0.0.1:9/v1'\n", ["'model' is required"], 1),
        ("[roles.r]\nbackends = []\n", ["backends"], 2),
    ],
)
def test_bad_config_is_a_located_error(
    tmp_path: Path, text: str, fragments: list[str], line: int | None
) -> None:
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.file == str(path)
    assert error.exit_code == 2
    for fragment in fragments:
        assert fragment in error.format()
    if line is not None:
        assert error.line == line


def test_toml_error_has_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", "[a]\nx = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.line, info.value.column) == (2, 5)
    assert info.value.format().startswith(f"{path}:2:5: invalid TOML")


def test_unreadable_config_is_an_error(tmp_path: Path) -> None:
    """A path that cannot be read as a file (here a directory: root reads any file)."""
    directory = tmp_path / "config.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_config(directory)
    assert info.value.file == str(directory)


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_non_utf8_config_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[defaults]\ntimeout = 3 # \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_expand_substitutes_and_registers_secrets() -> None:
    env = {"KEY": "sk-live-abcdef123456", "HOST": "example.test"}
    value = expand(
        "Bearer ${KEY} $$5 ${HOST}", owner="backend 'x'", field="api_key", secret=True, environ=env
    )
    assert value == "Bearer sk-live-abcdef123456 $5 example.test"
    assert redact("token sk-live-abcdef123456 here") == "token *** here"


def test_expand_names_missing_variable_and_owner() -> None:
    with pytest.raises(ConfigError) as info:
        expand("${NOPE_VAR}", owner="backend 'openai'", field="api_key", environ={})
    assert "NOPE_VAR" in str(info.value)
    assert "backend 'openai'" in str(info.value)
    assert missing_variables("${A}${B}", {"A": "1"}) == ["B"]


def test_unused_backend_with_missing_variable_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        "[backends.o]\ncommand = 'https://x.test/v1'\nmodel = 'm'\napi_key = '${MISSING_KEY}'\n",
    )
    assert load_config(path).backends["o"].api_key == "${MISSING_KEY}"
