"""Debug logging on stderr, with every registered secret masked."""

from __future__ import annotations

import logging
import sys

from llm_mux.secrets import redact

LOGGER_NAME = "llm_mux"


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def get_logger(name: str = "") -> logging.Logger:
    """A child of the ``llm_mux`` logger (silent unless ``--debug``)."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


_DEBUG_HANDLER = "llm_mux.debug"


def enable_debug() -> None:
    """Send debug logs to stderr, once."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(h.get_name() == _DEBUG_HANDLER for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_DEBUG_HANDLER)
    handler.setFormatter(_RedactingFormatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
