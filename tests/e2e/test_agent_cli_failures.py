"""Agent CLI failures through the real `llm-mux ask`, replayed from the real CLIs' output."""

from __future__ import annotations

from pathlib import Path


def test_ask_shows_a_recorded_cli_failure_as_text_with_its_class(
    cli, tmp_path: Path, fake_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[backends.claude]\ncommand = "fake-replay"\n'
        'args = ["claude-not-logged-in", "-p", "--output-format", "json"]\n'
        '[backends.stuck]\ncommand = "fake-replay"\n'
        'args = ["claude-stream-401", "-p", "--output-format", "stream-json", "--verbose"]\n'
        "timeout = 120\n"
    )
    result = cli("ask", "claude", "hi", "--config", str(config))
    assert result.exit_code == 1
    assert "Auth: Not logged in · Please run /login (exited with code 1)" in result.stderr
    assert '"is_error"' not in result.output
    stuck = cli("ask", "stuck", "hi", "--config", str(config), timeout=60)
    assert stuck.exit_code == 1
    assert "Auth (HTTP 401): HTTP 401 authentication_failed" in stuck.stderr
    assert "retrying after HTTP 401 authentication_failed (attempt 1/10)" in stuck.stderr
