#!/usr/bin/env python3
"""Imitates `claude -p [--output-format json|stream-json] PROMPT`.

`--fake-fail limit` reports the usage limit the way the real CLI does (exit 1).
"""

import json
import sys

args = sys.argv[1:]
if args == ["--version"]:
    print("2.1.197 (Claude Code)")  # as the real CLI prints it
    sys.exit(0)
fmt = args[args.index("--output-format") + 1] if "--output-format" in args else "text"
fail = args[args.index("--fake-fail") + 1] if "--fake-fail" in args else None
prompt = args[-1] if args and not args[-1].startswith("-") else sys.stdin.read()
answer = f"claude says: {prompt}"
result = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "duration_ms": 1234,
    "num_turns": 1,
    "result": answer,
    "session_id": "0f6c1d8e-6a1b-4b8e-9d55-7d0f3c2a9b11",
    "total_cost_usd": 0.0123,
    "usage": {
        "input_tokens": 10,
        "cache_creation_input_tokens": 5,
        "cache_read_input_tokens": 100,
        "output_tokens": 20,
    },
}
if fail == "limit":
    result.update(is_error=True, subtype="error", result="5-hour limit reached · resets 1am")
if fmt == "json":
    print(json.dumps(result))
elif fmt == "stream-json":
    print(json.dumps({"type": "system", "subtype": "init", "model": "claude-fake"}))
    message = {"role": "assistant", "content": [{"type": "text", "text": answer}]}
    print(json.dumps({"type": "assistant", "message": message}))
    print(json.dumps(result))
else:
    print(result["result"])
sys.exit(1 if fail else 0)
