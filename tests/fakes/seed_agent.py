#!/usr/bin/env python3
"""A stand-in for any agent CLI in the seed README's examples: `seed_agent.py NAME ARGS... PROMPT`.

It answers from what the prompt asks: facts JSON when the prompt asks for "facts" (the source
is NAME), one edit of bug.txt when asked to "Return edits as JSON", an edit plus a fact for
an "Analyze:" prompt (claude only; the others have nothing to add), otherwise
"NAME says: <first line>". `--version` prints a version, as the real CLIs do.
"""

import json
import sys

name, args = sys.argv[1], sys.argv[2:]
if args == ["--version"]:
    print(f"{name} 1.0 (fake)")
    sys.exit(0)
prompt = args[-1] if args else sys.stdin.read()
edit = {"path": "bug.txt", "old": "bug", "new": "fixed"}
fact = {"project": "api", "fact": f"{name} looked", "source": name, "confidence": 1.0}
if '"facts"' in prompt:
    print(json.dumps({"facts": [fact]}))
elif "Return edits as JSON" in prompt:
    print(json.dumps(edit))
elif prompt.startswith("Analyze:"):
    print(json.dumps({"edits": [edit], "facts": [fact]}) if name == "claude" else "nothing to add")
else:
    print(f"{name} says: {prompt.strip().splitlines()[0] if prompt.strip() else ''}")
