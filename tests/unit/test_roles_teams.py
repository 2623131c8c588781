"""Team detection, the project root, and the team as a template value."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_mux.errors import ConfigError
from llm_mux.teams import TeamValue, detect_team, project_root, team_value
from tests.fakes.fixtures import make_config

TEAMS = {
    "ruby": {"detect": ["*.gemspec"], "verify": "rake"},
    "rust": {"detect": ["Cargo.toml"], "verify": "cargo test", "description": "Rust"},
    "also-rust": {"detect": ["Cargo.toml", "rust-toolchain"]},
    "docs": {"detect": ["docs/*.md"]},
}
CONFIG = make_config({}, teams=TEAMS)


def project(tmp_path: Path, *files: str) -> Path:
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ((), None),
        (("Cargo.toml",), "rust"),
        (("rust-toolchain",), "also-rust"),
        (("Cargo.toml", "x.gemspec"), "ruby"),  # file order decides, not luck
        (("docs/intro.md",), "docs"),
        (("sub/Cargo.toml",), None),  # only the project root counts
    ],
)
def test_detection(tmp_path: Path, files: tuple[str, ...], expected: str | None) -> None:
    team = detect_team(CONFIG, project(tmp_path, *files), None)
    assert (team.name if team else None) == expected


def test_forced_team_and_none(tmp_path: Path) -> None:
    root = project(tmp_path, "Cargo.toml")
    forced = detect_team(CONFIG, root, "ruby")
    assert forced is not None and forced.name == "ruby"
    assert detect_team(CONFIG, root, "none") is None


def test_unknown_forced_team_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'rust'") as caught:
        detect_team(CONFIG, tmp_path, "rsut")
    assert "ruby, rust" in str(caught.value)


def test_invalid_pattern_is_a_config_error(tmp_path: Path) -> None:
    config = make_config({}, teams={"bad": {"detect": ["/etc/*"]}})
    with pytest.raises(ConfigError, match="team 'bad'"):
        detect_team(config, tmp_path, None)


def test_project_root_prefers_llm_mux_dir_then_git_then_cwd(tmp_path: Path) -> None:
    deep = tmp_path / "repo" / "pkg" / "src"
    deep.mkdir(parents=True)
    assert project_root(deep) == deep
    (tmp_path / "repo" / ".git").mkdir()
    assert project_root(deep) == tmp_path / "repo"
    (tmp_path / "repo" / "pkg" / ".llm-mux").mkdir()
    assert project_root(deep) == tmp_path / "repo" / "pkg"


def test_git_file_of_a_worktree_counts(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /elsewhere")
    (tmp_path / "a").mkdir()
    assert project_root(tmp_path / "a") == tmp_path


def test_team_value_renders_and_compares_as_the_name() -> None:
    value = team_value(CONFIG.teams["rust"])
    assert isinstance(value, TeamValue) and isinstance(value, str)
    assert value == "rust" and f"{value}" == "rust" and str(value) == "rust"
    assert (value.name, value.verify, value.description) == ("rust", "cargo test", "Rust")
    assert value.detect == ["Cargo.toml"]
    assert value and hash(value) == hash("rust")


def test_no_team_is_empty_and_falsy() -> None:
    value = team_value(None)
    assert value == "" and not value
    assert (value.name, value.verify, value.description, value.detect) == ("", "", "", [])


def test_team_value_in_a_sandboxed_template() -> None:
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    template = env.from_string("{{ team }}|{{ team.verify }}|{{ team == 'rust' }}")
    assert template.render(team=team_value(CONFIG.teams["rust"])) == "rust|cargo test|True"
    assert template.render(team=team_value(None)) == "||False"
