"""Shell completion through click's mechanism: commands, workflow names, roles and backends."""

from __future__ import annotations

from pathlib import Path

import pytest


def complete(cli, words: str, cword: int, cwd: Path | None = None) -> list[str]:
    env = {"_LLM_MUX_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    result = cli(env=env, cwd=cwd)
    assert result.exit_code == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if "," in line]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(cli, shell: str) -> None:
    result = cli("completion", shell)
    assert result.exit_code == 0
    assert "_LLM_MUX_COMPLETE" in result.stdout


def test_completes_commands(cli) -> None:
    assert complete(cli, "llm-mux ro", 1) == ["roles"]


def test_completes_workflow_names(cli) -> None:
    workflows = Path.cwd() / ".llm-mux" / "workflows"
    workflows.mkdir(parents=True)
    for name in ("review", "release", "fix"):
        (workflows / f"{name}.toml").write_text('[[steps]]\nname="a"\ntype="shell"\nrun="true"\n')
    assert sorted(complete(cli, "llm-mux run re", 2)) == ["release", "review"]
    assert complete(cli, "llm-mux validate f", 2) == ["fix"]


def test_completes_roles_and_backends(cli) -> None:
    config = Path.cwd() / ".llm-mux" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[backends.claude]\ncommand = "claude"\n[backends.codex]\ncommand = "codex"\n'
        '[roles.coder]\nbackends = ["codex"]\n'
    )
    assert complete(cli, "llm-mux ask c", 2) == ["coder", "claude", "codex"]
