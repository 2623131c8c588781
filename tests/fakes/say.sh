#!/bin/sh
# say.sh MESSAGE STREAM CODE PROMPT: print MESSAGE on stdout or stderr, exit CODE.
# e.g. say.sh "limit reached · resets 1am" stderr 1
if [ "$2" = "stderr" ]; then
    printf '%s\n' "$1" >&2
else
    printf '%s\n' "$1"
fi
exit "$3"
