"""Listings print plain aligned columns into a pipe and a drawn table on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from tests.conftest import llm_mux_executable

CONFIG = """
[backends.short]
command = "a"

[backends.a-much-longer-name]
command = "some tool"
args = ["--flag", "two words"]

[backends.web]
type = "openai"
command = "http://127.0.0.1:9/v1"
model = "m"
api_key = "${LISTING_TEST_KEY}"
enabled = false
"""


def test_piped_listing_is_one_aligned_line_per_backend(cli, write_config) -> None:
    config = write_config(CONFIG)
    result = cli("backends", "--config", str(config), env={"LISTING_TEST_KEY": "sk-hidden-123"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Backends"
    header, *rows = lines[1:]
    assert header.split() == ["name", "type", "command", "enabled"]
    assert [row.split()[0] for row in rows] == ["short", "a-much-longer-name", "web"]
    for column in ("type", "command", "enabled"):
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows)
    assert "some tool --flag two words" in rows[1] and rows[1].endswith("yes")
    assert rows[2].endswith("no")
    assert not any(ch in result.stdout for ch in "│┃━─")
    assert "sk-hidden-123" not in result.stdout


def test_an_empty_listing_says_so(cli, write_config) -> None:
    config = write_config('[backends.x]\ncommand = "a"\n')
    result = cli("teams", "--config", str(config))
    assert (result.exit_code, result.stdout) == (0, "No teams configured.\n")


def test_a_terminal_gets_the_drawn_table(write_config) -> None:
    config = write_config(CONFIG)
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [llm_mux_executable(), "backends", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        cwd=Path(config).parent,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes once the command exits
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    text = shown.decode()
    assert "a-much-longer-name" in text
    assert any(ch in text for ch in "│┃━─")
