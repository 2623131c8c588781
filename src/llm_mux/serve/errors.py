"""Errors as the two APIs shape them, and the status each cause answers (SPEC §9, Errors).

A backend refusing the *server's* credentials answers 502, never 401: 401 would tell the
client its own key is wrong. Messages are redacted; no traceback ever reaches a client.
"""

from __future__ import annotations

import json
import math

from llm_mux.errors import BackendError
from llm_mux.roles import RoleFailed
from llm_mux.secrets import redact

STATUS = {
    "BadRequest": 400,
    "RateLimited": 429,
    "Auth": 502,
    "ServerError": 502,
    "Failed": 502,
    "Parse": 502,
    "Unavailable": 503,
    "Timeout": 504,
}
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


class ApiError(Exception):
    """An answer with an error status; ``param`` names the field at fault, if any."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = redact(message)
        self.param = param
        self.code = code
        self.retry_after = retry_after

    @property
    def type(self) -> str:
        return OPENAI_TYPES.get(self.status, "api_error")

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.status == 429 and self.retry_after is not None:
            return [(b"retry-after", str(math.ceil(self.retry_after)).encode())]
        return []

    def openai(self) -> dict[str, object]:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": error}

    def anthropic(self) -> dict[str, object]:
        return {"type": "error", "error": {"type": self.type, "message": self.message}}

    def body(self, shape: str) -> bytes:
        document = self.anthropic() if shape == "anthropic" else self.openai()
        return json.dumps(document).encode()


def from_backend(error: BackendError, message: str | None = None) -> ApiError:
    """The answer for a backend's failure: its class decides the status."""
    status = STATUS.get(error.error_class, 502)
    retry_after = error.retry_after if status == 429 else None
    code = error.error_class
    return ApiError(status, message or error.message, code=code, retry_after=retry_after)


def from_role(exc: RoleFailed) -> ApiError:
    """The failure that decided the role (fallback: the last), naming every backend's."""
    outcomes = [o for o in exc.result.outcomes if o.error is not None]
    if not outcomes:
        return ApiError(503, f"Unavailable: {exc.message}", code="Unavailable")
    deciding = outcomes[0] if exc.result.execution == "parallel" else outcomes[-1]
    assert deciding.error is not None
    return from_backend(deciding.error, exc.message)
