"""Small helpers shared by commands: config loading and output."""

from __future__ import annotations

import sys
from typing import Any

from llm_mux.cli.options import Settings, current_settings
from llm_mux.config import Config, load_config
from llm_mux.secrets import redact, redact_data


def load(settings: Settings) -> Config:
    """The merged config for this invocation (user, project, ``--config``)."""
    config = load_config(settings.config)
    for warning in config.warnings():
        from llm_mux.logs import get_logger  # logging is imported only when there is news

        get_logger("config").debug("warning: %s", warning)
    return config


def emit_json(document: Any) -> None:
    """Write exactly one JSON document on stdout, secrets masked.

    Values are masked before they are serialised (a secret holding ``"`` or ``\\`` is
    escaped in the text), and the text again (``default=str`` may render any object).
    """
    import json

    text = json.dumps(redact_data(document), indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(redact(text) + "\n")
    sys.stdout.flush()
    settings = current_settings()
    if settings is not None:
        settings.emitted = True


def emit_text(text: str) -> None:
    """Write the final output on stdout, secrets masked, with one trailing newline."""
    sys.stdout.write(redact(text).rstrip("\n") + "\n")
    sys.stdout.flush()
