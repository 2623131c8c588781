#!/bin/sh
# Echoes stdin (prompt_via = "stdin"), prefixed so an empty answer is visible.
printf 'stdin: '
exec cat
