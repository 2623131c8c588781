#!/bin/sh
# big.sh BYTES PROMPT: prints BYTES bytes of "x".
head -c "$1" /dev/zero | tr '\0' x
