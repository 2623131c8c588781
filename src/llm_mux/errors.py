"""The one error hierarchy of llm-mux.

Every error a user can see is one of these; each knows its exit code and renders a
one-paragraph message (with the file, line and a hint where known). The CLI boundary
turns them into exit codes and prints them without a traceback.

    LlmMuxError                      exit 1
    ├── InvalidInput                 exit 2  (anything the user can fix before running)
    │   ├── UsageError               bad command line, unknown workflow arg
    │   ├── ConfigError              config file: TOML syntax, unknown key, bad value
    │   ├── WorkflowError            workflow file: schema, DAG, references
    │   └── TemplateError            template syntax, undefined variable, unsafe shell context
    ├── BackendError                 one backend call failed (after retries)
    │   ├── Unavailable              command not found, connection refused, DNS
    │   ├── AuthError                401/403, invalid key
    │   ├── RateLimited              429, rate-limit wording; carries retry_after
    │   ├── BackendTimeout           the call took longer than its timeout
    │   ├── ServerError              5xx, 408, 409, dropped connections
    │   ├── BadRequest               other 4xx
    │   ├── Failed                   CLI exited non-zero
    │   └── ParseError               response not understood
    ├── RoleError                    a role call failed: carries each backend's failure
    ├── StepError                    a workflow step failed
    ├── ApplyError                   edits could not be parsed, confined or applied
    ├── StoreError                   the memory database refused a write
    └── Interrupted                  exit 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict, Unpack


class Where(TypedDict, total=False):
    """Where an error points, passed on by subclasses to :class:`LlmMuxError`."""

    file: Path | str | None
    line: int | None
    column: int | None
    hint: str | None


class BackendFields(Where, total=False):
    """What a backend error knows beyond where it points."""

    backend: str | None
    status: int | None
    retry_after: float | None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or an empty string."""
    import difflib  # only when a name is unknown

    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


class LlmMuxError(Exception):
    """Base of every error llm-mux reports to a user."""

    exit_code = 1
    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.hint = hint

    def location(self) -> str:
        """``file:line:column`` as far as it is known."""
        if self.file is None:
            return ""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self) -> str:
        """The one-paragraph message shown to a user."""
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.format()


class InvalidInput(LlmMuxError):
    """Input the user can fix before running anything; exit code 2."""

    exit_code = 2


class UsageError(InvalidInput):
    """A bad command line: unknown option value, missing or unknown workflow argument."""

    kind = "usage error"


class ConfigError(InvalidInput):
    """A config file could not be read, parsed or validated."""

    kind = "config error"


class WorkflowError(InvalidInput):
    """A workflow file is invalid (schema, DAG, references); raised before anything runs."""

    kind = "workflow error"

    def __init__(self, message: str, *, step: str | None = None, **kwargs: Unpack[Where]) -> None:
        self.step = step
        if step is not None:
            message = f"step '{step}': {message}"
        super().__init__(message, **kwargs)


class TemplateError(InvalidInput):
    """A template failed to parse or render (syntax, undefined variable, unsafe context)."""

    kind = "template error"


class BackendError(LlmMuxError):
    """One backend call failed. ``retryable`` is decided by the retry policy, not here.

    ``attempts`` is how many calls were made before this failure was final, and
    ``attempt_errors`` names each failed attempt's class (set by the retry loop).
    """

    kind = "backend error"
    error_class = "Failed"
    attempts: int = 1
    attempt_errors: list[str]

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        **kwargs: Unpack[Where],
    ) -> None:
        self.backend = backend
        self.status = status
        self.retry_after = retry_after
        self.attempt_errors = []
        self.detail = message
        prefix = f"backend '{backend}': " if backend else ""
        status_text = f" (HTTP {status})" if status is not None else ""
        super().__init__(
            f"{prefix}{self.error_class}{status_text}: {message}",
            **kwargs,
        )


class Unavailable(BackendError):
    """The backend cannot be reached: command not found, connection refused, DNS failure."""

    error_class = "Unavailable"

    def __init__(
        self, message: str, *, not_found: bool = False, **kwargs: Unpack[BackendFields]
    ) -> None:
        self.not_found = not_found
        super().__init__(message, **kwargs)


class AuthError(BackendError):
    """The backend refused our credentials (401/403, "invalid api key"). Never retried."""

    error_class = "Auth"


class RateLimited(BackendError):
    """The backend asked us to slow down (429 or rate-limit wording). ``retry_after`` in s."""

    error_class = "RateLimited"


class BackendTimeout(BackendError):
    """The backend call took longer than its timeout."""

    error_class = "Timeout"


class ServerError(BackendError):
    """The backend failed on its side (5xx, 408, 409, a dropped connection). Retried."""

    error_class = "ServerError"
    dropped = False  # a kept-alive connection closed under us before any answer came


class BadRequest(BackendError):
    """The backend rejected the request (4xx other than auth and rate limits). Never retried."""

    error_class = "BadRequest"


class Failed(BackendError):
    """A CLI backend exited non-zero."""

    error_class = "Failed"


class ParseError(BackendError):
    """The backend answered something we cannot understand (e.g. HTML where JSON was due)."""

    error_class = "Parse"


class RoleError(LlmMuxError):
    """A role call failed; ``failures`` maps each backend tried to its error."""

    kind = "role error"

    def __init__(self, message: str, failures: dict[str, BackendError] | None = None) -> None:
        self.failures = dict(failures or {})
        lines = [message]
        lines += [f"  - {name}: {err.message}" for name, err in self.failures.items()]
        super().__init__("\n".join(lines))


class StepError(LlmMuxError):
    """A workflow step failed at run time."""

    kind = "step failed"


class ApplyError(LlmMuxError):
    """Edits could not be parsed, confined to the project or applied."""

    kind = "apply error"


class StoreError(LlmMuxError):
    """The memory store could not read or write."""

    kind = "store error"


class Interrupted(LlmMuxError):
    """The run was stopped by a signal; the exit code follows the shell convention 128+N."""

    kind = "interrupted"
    exit_code = 130

    def __init__(self, message: str = "interrupted", *, signum: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
