#!/usr/bin/env python3
"""Replays what a real agent CLI printed: `replay SCENARIO [CLI args...] PROMPT`.

The outputs in `recorded/` were captured from claude-code 2.1, codex-cli 0.171, gemini-cli
0.61 and `llm` 0.36 without credentials or network (or against a local server answering
400/401/529). Scenarios whose CLI retries on its own print their lines, then hang the way
the real CLI does, until they are killed. `REPLAY_PID_FILE` receives the pid.
"""

import os
import sys
import time
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "recorded"
EXIT_CODES = {
    "claude-not-logged-in": 1,
    "claude-not-logged-in-text": 1,
    "claude-prompt-too-long": 1,
    "gemini-no-auth-json": 41,
    "gemini-no-auth": 41,
    "llm-no-key": 1,
}
HANGS = ("claude-stream-401", "claude-stream-529", "codex-offline")

scenario = sys.argv[1]
if os.environ.get("REPLAY_PID_FILE"):
    Path(os.environ["REPLAY_PID_FILE"]).write_text(str(os.getpid()))
for stream, out in (("stderr", sys.stderr), ("stdout", sys.stdout)):
    path = RECORDED / f"{scenario}.{stream}"
    if path.exists():
        for line in path.read_text().splitlines(keepends=True):
            out.write(line)
            out.flush()
            if scenario in HANGS:
                time.sleep(0.02)
if scenario in HANGS:
    while True:
        time.sleep(60)
sys.exit(EXIT_CODES[scenario])
