#!/bin/sh
# exit.sh CODE PROMPT: a partial answer on stdout, a reason on stderr, then exit CODE.
echo "partial answer"
echo "error: something broke (code $1)" >&2
exit "$1"
