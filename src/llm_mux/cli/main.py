"""Entry point: answers ``--version`` before importing anything heavy, then runs click."""

import sys

# Neither ``typing`` nor ``__future__`` is imported here (they would cost ``--version`` a
# third of its time), so annotations naming typing's types are quoted.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_PYDANTIC_PLUGIN_LOADER = "pydantic.plugin._loader"
STRANDED_WAIT = 0.5  # s a cancelled store's thread gets to finish before the exit


def entry(argv: list[str] | None = None) -> "NoReturn":
    """The ``llm-mux`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from llm_mux._version import __version__

        sys.stdout.write(f"llm-mux {__version__}\n")
        sys.exit(0)
    without_pydantic_plugins()
    from llm_mux.cli.boundary import main

    leave(main(args))


def leave(code: int) -> "NoReturn":
    """Exit with ``code``; without finalising the interpreter when a cancelled store's
    thread is still inside SQLite, since finalising under it can abort the process."""
    cancel = sys.modules.get("llm_mux.memory.cancel")
    if cancel is not None and cancel.stranded(STRANDED_WAIT):
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def without_pydantic_plugins() -> None:
    """Stop pydantic from looking for third-party plugins in this process.

    On the first validation pydantic imports ``importlib.metadata`` and walks every installed
    distribution for ``pydantic`` entry points: 10-40 ms here, far more where many packages
    are installed. Plugins only observe validation, so the CLI goes without them; library
    users of ``llm_mux`` keep pydantic as it is. Set before pydantic is imported.
    """
    if _PYDANTIC_PLUGIN_LOADER in sys.modules:
        return
    loader = type(sys)(_PYDANTIC_PLUGIN_LOADER)
    loader.__dict__["get_plugins"] = tuple  # no plugins
    sys.modules[_PYDANTIC_PLUGIN_LOADER] = loader
