"""Text without Jinja markup renders to itself, so it needs no Jinja at all.

Most prompts hold no ``{{``, ``{%`` or ``{#``; rendering them this way keeps ``run`` and
``validate`` from importing Jinja (20 ms) when no template needs it. The result is exactly
what Jinja renders for such text: its lexer turns every newline (``\\r\\n``, ``\\r``, ``\\n``)
into ``\\n``, and our environment keeps the trailing one.
"""

from __future__ import annotations

import re

_MARKUP = re.compile(r"\{[{%#]")
_NEWLINE = re.compile(r"\r\n?")


def is_plain(source: str) -> bool:
    """Whether ``source`` holds no Jinja markup at all."""
    return _MARKUP.search(source) is None


def plain_text(source: str) -> str:
    """What Jinja renders for markup-free ``source``."""
    return _NEWLINE.sub("\n", source)
