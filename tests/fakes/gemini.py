#!/usr/bin/env python3
"""Imitates `gemini -o json -p PROMPT` (`--output-format json` too)."""

import json
import sys

args = sys.argv[1:]
if args == ["--version"]:
    print("0.61.0")  # as the real CLI prints it
    sys.exit(0)
prompt = args[-1]
as_json = any(
    a in ("-o", "--output-format") and i + 1 < len(args) and args[i + 1] == "json"
    for i, a in enumerate(args)
)
answer = f"gemini says: {prompt}"
if not as_json:
    print(answer)
    sys.exit(0)
tokens = {"prompt": 11, "candidates": 22, "total": 40, "cached": 0, "thoughts": 7, "tool": 0}
print(
    json.dumps(
        {
            "response": answer,
            "stats": {
                "models": {"gemini-2.5-pro": {"api": {"totalRequests": 1}, "tokens": tokens}},
                "tools": {"totalCalls": 0},
            },
        },
        indent=2,
    )
)
