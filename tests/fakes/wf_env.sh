#!/bin/sh
# wf_env.sh PROMPT: answers with the token it was given in its environment (must be masked).
printf 'token=%s\n' "$WF_TOKEN"
