#!/bin/sh
# hang.sh PIDFILE [stubborn] PROMPT: start a grandchild, write its pid, then hang.
# With "stubborn" the grandchild ignores SIGTERM, so only SIGKILL stops it.
if [ "$2" = "stubborn" ]; then
    (trap '' TERM; exec sleep 300) &
else
    sleep 300 &
fi
echo $! > "$1"
sleep 300
