#!/usr/bin/env python3
"""Prints what it was started with as JSON: argv, stdin size, cwd, selected environment."""

import json
import os
import sys
from pathlib import Path

data = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
print(
    json.dumps(
        {
            "argv": sys.argv[1:],
            "arg_bytes": [len(a.encode("utf-8", "surrogateescape")) for a in sys.argv[1:]],
            "stdin_bytes": len(data),
            "stdin_head": data[:40].decode("utf-8", "replace"),
            "cwd": str(Path.cwd()),
            "claudecode": os.environ.get("CLAUDECODE"),
            "env": {k: v for k, v in os.environ.items() if k.startswith("FAKE_")},
        }
    )
)
