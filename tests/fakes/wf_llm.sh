#!/bin/sh
# wf_llm.sh NAME PROMPT...: a scripted model for workflow tests.
# Asked for facts JSON it returns facts; asked for edits it returns one edit of bug.txt;
# otherwise it answers "NAME saw: <the first three prompt lines>".
name=$1
shift
prompt=$*
case $prompt in
    *'"facts"'*)
        printf '%s\n' '{"facts": [{"project": "demo", "fact": "uses sh", "source": "wf_llm.sh", "confidence": 1.0}]}'
        ;;
    *'Return edits as JSON'*)
        printf '%s\n' '{"path": "bug.txt", "old": "bug", "new": "fixed"}'
        ;;
    *)
        printf '%s saw: %s\n' "$name" "$(printf '%s\n' "$prompt" | head -n 3 | tr '\n' ' ')"
        ;;
esac
