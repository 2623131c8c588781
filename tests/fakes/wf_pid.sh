#!/bin/sh
# wf_pid.sh PIDFILE PROMPT...: record our pid, start a grandchild that also records its pid,
# then hang: a backend that must be stopped, with its whole group, on Ctrl-C.
printf '%s\n' "$$" > "$1"
sleep 30 &
printf '%s\n' "$!" >> "$1"
sleep 30
