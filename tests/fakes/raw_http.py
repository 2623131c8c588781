"""An HTTP/1.1 request written byte for byte, for tests that talk to a server on a raw socket."""

from __future__ import annotations

import json
from typing import Any


def chat_post(body: dict[str, Any], host: str = "127.0.0.1") -> bytes:
    """``POST /v1/chat/completions`` carrying ``body`` as JSON, connection kept alive."""
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data
