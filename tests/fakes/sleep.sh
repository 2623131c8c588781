#!/bin/sh
# sleep.sh SECONDS PROMPT: answers after SECONDS.
sleep "$1"
echo "slept $1"
