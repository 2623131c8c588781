"""The one place where exceptions become exit codes and messages.

Commands raise domain errors and never print them; here they are shown as one paragraph
on stderr (secrets masked), with a traceback only under ``--debug``:
0 success, 1 failure, 2 invalid input, 130/143/129 interrupted. Under ``--output json``,
invalid input (exit 2) that stops a command before it wrote its document (an unknown
workflow, a bad config, a bad command line) also becomes the one document on stdout,
``{"success": false, "error": …}``, so a script reading stdout always gets JSON.
"""

from __future__ import annotations

import sys

import click

from llm_mux.cli.options import current_settings, forget_settings
from llm_mux.errors import Interrupted, LlmMuxError
from llm_mux.secrets import redact


def _print_error(text: str) -> None:
    try:
        sys.stderr.write(redact(text).rstrip("\n") + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, OSError):
        pass


def _json_error(text: str) -> None:
    """The error as the one JSON document, when JSON was asked for and none was written."""
    settings = current_settings()
    if settings is None or not settings.json or settings.emitted:
        return
    import json

    settings.emitted = True
    document = {"success": False, "error": redact(text)}
    try:
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass


def _traceback_if_debug(args: list[str]) -> None:
    if "--debug" in args:
        import traceback  # only here: a traceback is shown under --debug alone

        _print_error("".join(traceback.format_exc()))


def main(args: list[str]) -> int:
    """Run the CLI with ``args`` and return the exit code."""
    from llm_mux.cli.app import cli

    forget_settings()
    try:
        result = cli.main(args=args, prog_name="llm-mux", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        _print_error("interrupted")
        return 130
    except click.ClickException as exc:
        _traceback_if_debug(args)
        _json_error(exc.format_message())
        exc.show()
        return 2 if exc.exit_code == 1 else exc.exit_code
    except Interrupted as exc:
        _print_error(exc.format())
        return exc.exit_code
    except LlmMuxError as exc:
        _traceback_if_debug(args)
        if exc.exit_code == 2:
            _json_error(exc.format())
        _print_error(f"error: {exc.format()}")
        return exc.exit_code
    except BrokenPipeError:
        return 1
    except Exception as exc:  # the last line of defence: no traceback without --debug
        _traceback_if_debug(args)
        _print_error(
            f"internal error: {type(exc).__name__}: {exc}\nhint: run with --debug for details"
        )
        return 1
    return result if isinstance(result, int) else 0
