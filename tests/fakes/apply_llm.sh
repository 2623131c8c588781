#!/bin/sh
# apply_llm.sh DIR PROMPT: a scripted model that answers in turn, for apply-step tests.
# Call N saves its prompt to DIR/prompt-N and prints DIR/answer-N; once the answers run
# out it repeats the last one. DIR/count holds the number of calls so far.
dir=$1
prompt=$2
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
printf '%s' "$prompt" > "$dir/prompt-$n"
answer=$dir/answer-$n
while [ ! -f "$answer" ] && [ "$n" -gt 1 ]; do
    n=$((n - 1))
    answer=$dir/answer-$n
done
cat "$answer"
