#!/bin/sh
# Prints bytes that are not valid UTF-8 between valid text.
printf 'caf\303\251 \377\376 ok\n'
