#!/bin/sh
# wf_llm.sh NAME PROMPT...: a scripted model for workflow tests.
# Asked for facts JSON it returns a fact whose source is NAME ("broken" answers other
# JSON); asked for edits it returns one edit of bug.txt;
# otherwise it answers "NAME saw: <the first three prompt lines>".
name=$1
shift
prompt=$*
case $prompt in
    *'"facts"'*)
        if [ "$name" = broken ]; then
            printf '%s\n' 'Here you go: {"findings": ["uses sh"]}'
        else
            printf '%s\n' "{\"facts\": [{\"project\": \"demo\", \"fact\": \"uses sh\", \"source\": \"$name\", \"confidence\": 1.0}]}"
        fi
        ;;
    *'Return edits as JSON'*)
        printf '%s\n' '{"path": "bug.txt", "old": "bug", "new": "fixed"}'
        ;;
    *)
        printf '%s saw: %s\n' "$name" "$(printf '%s\n' "$prompt" | head -n 3 | tr '\n' ' ')"
        ;;
esac
