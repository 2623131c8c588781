"""Entry point: answers ``--version`` before importing anything heavy, then runs click."""

from __future__ import annotations

import sys
from typing import NoReturn


def entry(argv: list[str] | None = None) -> NoReturn:
    """The ``llm-mux`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from llm_mux._version import __version__

        sys.stdout.write(f"llm-mux {__version__}\n")
        sys.exit(0)
    from llm_mux.cli.boundary import main

    sys.exit(main(args))
