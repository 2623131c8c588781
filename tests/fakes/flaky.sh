#!/bin/sh
# flaky.sh COUNTER FAILURES PROMPT: the first FAILURES calls fail with a rate-limit
# message (exit 1); later calls answer. COUNTER is a file counting the calls.
n=$(cat "$1" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$1"
if [ "$n" -le "$2" ]; then
    echo "Error: 429 Too Many Requests" >&2
    exit 1
fi
echo "answer after $n calls"
