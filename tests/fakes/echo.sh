#!/bin/sh
# Prints its arguments joined by spaces: the simplest CLI backend.
printf '%s\n' "$*"
