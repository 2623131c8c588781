"""One access line per request on stderr: text, or one JSON object per line."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

from llm_mux.logs import get_logger
from llm_mux.secrets import redact

if TYPE_CHECKING:
    from llm_mux.serve.app import Exchange

log = get_logger("serve")


class AccessLog:
    """Writes the access lines; ``json`` for ``--output json``, nothing when ``quiet``."""

    def __init__(self, *, json_lines: bool = False, quiet: bool = False) -> None:
        self.json_lines = json_lines
        self.quiet = quiet

    def line(self, exchange: Exchange, seconds: float) -> None:
        if self.quiet:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ms = round(seconds * 1000, 1)
        backends = ",".join(exchange.backends)
        if self.json_lines:
            record = {
                "time": now,
                "method": exchange.method,
                "path": exchange.path,
                "model": exchange.model or None,
                "status": exchange.status,
                "backends": exchange.backends,
                "duration_ms": ms,
                "request_id": exchange.request_id,
            }
            text = json.dumps(record, ensure_ascii=False)
        else:
            model = exchange.model or "-"
            text = (
                f"{now} {exchange.method} {exchange.path} model={model} "
                f"status={exchange.status} backend={backends or '-'} {ms:g} ms"
            )
        sys.stderr.write(redact(_printable(text)) + "\n")
        sys.stderr.flush()

    def crash(self, exchange: Exchange) -> None:
        """An unexpected error: one line, the traceback only with ``--debug``."""
        log.error("internal error answering %s %s", exchange.method, exchange.path)
        log.debug("the internal error", exc_info=True)


def _printable(text: str) -> str:
    """No control characters from a client (a path or model) can forge a log line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
