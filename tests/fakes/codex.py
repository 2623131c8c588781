#!/usr/bin/env python3
"""Imitates `codex exec --json PROMPT` (JSONL events); `--old-format` uses the older
`{"msg": ...}` events, `--fake-fail` ends with a failed turn."""

import json
import sys

args = sys.argv[1:]
if args == ["--version"]:
    print("codex-cli 0.171.0")  # as the real CLI prints it
    sys.exit(0)
prompt = args[-1]
answer = f"codex says: {prompt}"
if "--json" not in args and "--experimental-json" not in args:
    print(answer)
    sys.exit(0)


def emit(event: dict) -> None:
    print(json.dumps(event))


if "--old-format" in args:
    emit({"id": "0", "msg": {"type": "task_started"}})
    emit({"id": "0", "msg": {"type": "agent_message", "message": "thinking aloud"}})
    emit({"id": "0", "msg": {"type": "token_count", "input_tokens": 7, "output_tokens": 3}})
    emit({"id": "0", "msg": {"type": "agent_message", "message": answer}})
    emit({"id": "0", "msg": {"type": "task_complete", "last_agent_message": answer}})
    sys.exit(0)
print("warning: a line that is not JSON")
emit({"type": "thread.started", "thread_id": "t-1"})
emit({"type": "turn.started"})
emit({"type": "item.completed", "item": {"id": "i0", "type": "reasoning", "text": "hmm"}})
if "--fake-fail" in args:
    emit({"type": "turn.failed", "error": {"message": "stream disconnected before completion"}})
    sys.exit(1)
emit({"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "draft"}})
emit({"type": "item.completed", "item": {"id": "i2", "type": "agent_message", "text": answer}})
usage = {"input_tokens": 120, "cached_input_tokens": 100, "output_tokens": 30}
emit({"type": "turn.completed", "usage": usage})
