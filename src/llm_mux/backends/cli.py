"""CLI backends: ``command args... PROMPT`` run through the one process runner, no shell.

The prompt is the last argument (or stdin with ``prompt_via = "stdin"``; a prompt over
100 KiB moves to stdin by itself unless ``stdin_fallback = false``). Failures become our
error classes here: a missing command is Unavailable, a timeout kills the process group and
is a Timeout, a non-zero exit is Failed — or the class the CLI's JSON reports (its HTTP
status), or RateLimited/Auth when the output says so in words. The output is watched while the
command runs: its last lines go into every error, and a JSON event that already says the call
cannot succeed (see :mod:`llm_mux.backends.cli_watch`) ends it at once.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from llm_mux.backends.base import Request, Response
from llm_mux.backends.cli_output import Parsed, json_mode, parse_output
from llm_mux.backends.cli_watch import OutputWatch, Verdict
from llm_mux.backends.patterns import AUTH, RATE_LIMIT, matching_line, reset_after
from llm_mux.config import Backend as BackendConfig
from llm_mux.config import Defaults
from llm_mux.config.expand import expand
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    BadRequest,
    Failed,
    RateLimited,
    ServerError,
    Unavailable,
)
from llm_mux.logs import get_logger
from llm_mux.process import (
    CommandNotFound,
    MiB,
    OutputTooLarge,
    ProcessOutcome,
    ProcessRequest,
    ProcessTimeout,
    run_process,
)

ARG_LIMIT = 100 * 1024  # bytes of one argument before the prompt moves to stdin
VERSION_TIMEOUT = 15.0  # s for `CLI --version` in doctor; node CLIs start slowly under load
# CLIs known to answer `--version` without sending a prompt; others are only looked up.
VERSIONED = frozenset({"claude", "codex", "gemini", "llm", "aichat", "opencode", "ollama"})
TAIL = 1500  # characters of output quoted in a failure
REMOVED_ENV = ("CLAUDECODE",)  # set inside Claude Code; nested agents refuse to start

log = get_logger("backend.cli")


@dataclass(frozen=True)
class Invocation:
    """The argv to run and the bytes for stdin (None: stdin closed)."""

    argv: tuple[str, ...]
    stdin: bytes | None
    prompt_bytes: int


class CliBackend:
    """A backend of type ``cli``: any command that takes a prompt and prints an answer."""

    def __init__(self, name: str, cfg: BackendConfig, defaults: Defaults) -> None:
        self.name = name
        self.cfg = cfg
        self.defaults = defaults
        self._json = json_mode(cfg.args)

    @property
    def _owner(self) -> str:
        return f"backend '{self.name}'"

    def invocation(self, prompt: str) -> Invocation:
        """Build argv (through ``defaults.command_wrapper`` if set) and decide where the
        prompt goes."""
        prompt = _check_text(_encodable(prompt), "the prompt", self.name)
        data = prompt.encode("utf-8")
        inner = [self.command(), *self.args()]
        if self.cfg.prompt_via == "stdin":
            return Invocation(self.wrap(inner), data, len(data))
        argv = self.wrap([*inner, prompt])
        if len(argv[-1].encode("utf-8")) <= ARG_LIMIT:
            return Invocation(argv, None, len(data))
        if not self.cfg.stdin_fallback:
            raise BadRequest(
                f"the prompt is {len(data)} bytes, over the {ARG_LIMIT // 1024} KiB limit for "
                'one argument; set prompt_via = "stdin" or stdin_fallback = true',
                backend=self.name,
            )
        return Invocation(self.wrap(inner), data, len(data))

    def command(self) -> str:
        command = expand(self.cfg.command or "", owner=self._owner, field="command")
        return _check_text(command, "command", self.name)

    def args(self) -> list[str]:
        return [
            _check_text(expand(a, owner=self._owner, field="args", secret=True), "args", self.name)
            for a in self.cfg.args
        ]

    def wrap(self, argv: list[str]) -> tuple[str, ...]:
        """``wrapper... 'cmd args prompt'``: the wrapped command as ONE shell-quoted argument."""
        wrapper = wrapper_argv(self.defaults, self.name)
        return (*wrapper, shlex.join(argv)) if wrapper else tuple(argv)

    def environment(self) -> dict[str, str]:
        """Our environment without ``CLAUDECODE``, plus the backend's ``env``."""
        env = {k: v for k, v in os.environ.items() if k not in REMOVED_ENV}
        for key, value in self.cfg.env.items():
            if not key or "=" in key or "\0" in key:
                raise BadRequest(f"invalid environment variable name {key!r}", backend=self.name)
            field = f"env.{key}"
            env[key] = _check_text(
                expand(value, owner=self._owner, field=field, secret=True), field, self.name
            )
        return env

    def timeout(self, request: Request) -> float:
        return float(request.timeout or self.cfg.timeout or self.defaults.timeout)

    async def complete(self, request: Request) -> Response:
        """Run the command once and read its answer."""
        call = self.invocation(request.prompt)
        timeout = self.timeout(request)
        watch = OutputWatch(self._json)
        process = ProcessRequest(
            argv=call.argv,
            cwd=request.cwd,
            env=self.environment(),
            stdin=call.stdin,
            timeout=timeout,
            max_output=self.defaults.max_output_mb * MiB,
            on_output=watch.feed,
        )
        self._log_start(call)
        started = time.monotonic()
        outcome = await self._run(process, timeout, watch)
        log.debug(
            "backend %s: exit %d in %.0f ms, %d bytes on stdout",
            self.name,
            outcome.exit_code,
            outcome.duration * 1000,
            len(outcome.stdout),
        )
        if outcome.exit_code != 0:
            raise self.failure(outcome, watch.tail())
        parsed = parse_output(outcome.text, json_mode=self._json)
        if parsed.error is not None:
            raise reported_error(parsed, self.name, "reported an error")
        duration = int((time.monotonic() - started) * 1000)
        return Response(parsed.text, self.name, duration, parsed.usage)

    def _log_start(self, call: Invocation) -> None:
        shown = call.argv if call.stdin is not None else call.argv[:-1]
        where = "stdin" if call.stdin is not None else "the last argument"
        log.debug(
            "backend %s: %s (prompt: %d bytes on %s)",
            self.name,
            shlex.join(shown),
            call.prompt_bytes,
            where,
        )

    async def _run(
        self, process: ProcessRequest, timeout: float, watch: OutputWatch
    ) -> ProcessOutcome:
        """Run the command until it exits, or until its output says it cannot succeed."""
        running = asyncio.ensure_future(run_process(process))
        decided = asyncio.ensure_future(watch.decided.wait())
        try:
            await asyncio.wait({running, decided}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            decided.cancel()
            if not running.done():
                running.cancel()  # stops the process group before it returns
                await asyncio.wait({running})  # a cancellation of ours still propagates
        if watch.verdict is not None and not (running.done() and not running.cancelled()):
            raise self.early_failure(watch.verdict, watch.tail())
        try:
            return running.result()
        except CommandNotFound as exc:
            raise Unavailable(str(exc), backend=self.name, not_found=True) from None
        except ProcessTimeout:
            message = f"no answer within {timeout:g} s; the process group was stopped"
            raise BackendTimeout(_with_tail(message, watch.tail()), backend=self.name) from None
        except OutputTooLarge as exc:
            raise Failed(str(exc), backend=self.name) from None
        except OSError as exc:  # E2BIG and friends: the command could not start
            reason = exc.strerror or str(exc)
            message = f"cannot start {process.argv[0]}: {reason}"
            raise Failed(message, backend=self.name) from None

    def early_failure(self, verdict: Verdict, tail: str) -> BackendError:
        """The error for a run stopped because its JSON events said why it would fail."""
        how = "reported while the command ran; it was stopped"
        lines = tail.splitlines()
        if lines and lines[-1] == verdict.message:  # said once is enough
            tail = "\n".join(lines[:-1])
        if verdict.network:
            return Unavailable(_with_tail(f"{verdict.message} ({how})", tail), backend=self.name)
        if verdict.status is not None:
            return classify(verdict.message, self.name, how, tail, status=verdict.status)
        return classify(verdict.message, self.name, how, _with_tail(verdict.message, tail))

    def failure(self, outcome: ProcessOutcome, tail: str = "") -> BackendError:
        """The error for a non-zero exit: the class the CLI's JSON reports, else rate limit
        or auth wording, else Failed; the message is the CLI's text, never its raw JSON."""
        how = _exit_description(outcome.exit_code)
        reported = self._reported(outcome)
        if reported is not None:
            return reported_error(reported, self.name, how)
        text = "\n".join(t for t in (outcome.stderr_text, outcome.text) if t)
        return classify(text, self.name, how, tail or _tail(outcome))

    def _reported(self, outcome: ProcessOutcome) -> Parsed | None:
        """The failure a JSON mode reports on stdout, or on stderr (gemini)."""
        if not self._json:
            return None
        for text in (outcome.text, outcome.stderr_text):
            parsed = parse_output(text, json_mode=True)
            if parsed.error is not None:
                return parsed
        return None

    async def check(self) -> str:
        """Available when the command (or the wrapper) resolves to an executable and, for a
        known agent CLI, ``--version`` answers (bounded; no prompt is sent)."""
        found = resolve_command(self.cfg, self.defaults, self.name)
        command = self.command()
        if self.defaults.command_wrapper or Path(command).name not in VERSIONED:
            return found
        return f"{found}; {await self._version(command)}"

    async def _version(self, command: str) -> str:
        """What ``command --version`` prints; Unavailable when it fails or hangs."""
        argv = (command, "--version")
        request = ProcessRequest(argv, env=self.environment(), timeout=VERSION_TIMEOUT)
        shown = f"`{Path(command).name} --version`"
        try:
            outcome = await run_process(request)
        except ProcessTimeout:
            message = f"{shown} gave no answer within {VERSION_TIMEOUT:g} s"
            raise Unavailable(message, backend=self.name) from None
        except (CommandNotFound, OSError) as exc:
            raise Unavailable(f"{shown} cannot run: {exc}", backend=self.name) from None
        lines = (outcome.text.strip() or outcome.stderr_text.strip()).splitlines()
        said = _shorten(lines[-1].strip()) if lines else "nothing"
        if not outcome.ok:
            failure = f"{shown} {_exit_description(outcome.exit_code)}: {said}"
            raise Unavailable(failure, backend=self.name)
        return said


def classify(
    text: str, backend: str, how: str, tail: str | None = None, *, status: int | None = None
) -> BackendError:
    """Failure output → the class of its HTTP status when known, else RateLimited (with the
    reset time) or AuthError from its wording, else Failed."""
    if status is not None:
        return from_status(status, text, backend, how, tail or "")
    line = matching_line(RATE_LIMIT, text)
    if line is not None:
        return RateLimited(f"{line} ({how})", backend=backend, retry_after=reset_after(text))
    line = matching_line(AUTH, text)
    if line is not None:
        return AuthError(f"{line} ({how})", backend=backend)
    detail = tail if tail is not None else _shorten(text.strip()) or "no output"
    return Failed(f"{how}: {detail}", backend=backend)


def reported_error(parsed: Parsed, backend: str, how: str) -> BackendError:
    """The error a CLI's JSON reported: its status's class, else its error code's, else
    what its wording says."""
    message = parsed.error or "the command reported an error"
    if parsed.status is None and parsed.error_class == "Auth":
        return AuthError(f"{_shorten(message)} ({how})", backend=backend)
    if parsed.status is None and parsed.error_class == "BadRequest":
        return BadRequest(f"{_shorten(message)} ({how})", backend=backend)
    return classify(message, backend, how, status=parsed.status)


def from_status(status: int, message: str, backend: str, how: str, tail: str = "") -> BackendError:
    """The error class for an HTTP status a CLI reported (SPEC §1), with its message."""
    text = _with_tail(f"{_shorten(message.strip()) or 'no message'} ({how})", tail)
    if status == 429:
        return RateLimited(text, backend=backend, status=status, retry_after=reset_after(message))
    if status in (401, 403):
        return AuthError(text, backend=backend, status=status)
    if status >= 500 or status in (408, 409):
        return ServerError(text, backend=backend, status=status)
    if status >= 400:
        return BadRequest(text, backend=backend, status=status)
    return Failed(text, backend=backend, status=status)


def _with_tail(message: str, tail: str) -> str:
    if not tail:
        return message
    return f"{message}; last output:\n" + "\n".join(f"  {line}" for line in tail.splitlines())


def resolve_command(cfg: BackendConfig, defaults: Defaults, name: str) -> str:
    """Where the command (or, with ``command_wrapper``, the wrapper) is; Unavailable if not."""
    wrapper = wrapper_argv(defaults, name)
    command = (
        wrapper[0]
        if wrapper
        else expand(cfg.command or "", owner=f"backend '{name}'", field="command")
    )
    found = shutil.which(command) if command else None
    if found is None:
        raise Unavailable(f"command not found: {command}", backend=name, not_found=True)
    return f"{command} is {found}" if found != command else f"{command} is executable"


def wrapper_argv(defaults: Defaults, backend: str) -> list[str]:
    """``defaults.command_wrapper`` split into words (empty when unset)."""
    if not defaults.command_wrapper:
        return []
    try:
        return shlex.split(defaults.command_wrapper)
    except ValueError as exc:
        message = f"defaults.command_wrapper cannot be split into words: {exc}"
        raise BadRequest(message, backend=backend) from None


def _check_text(value: str, what: str, backend: str) -> str:
    position = value.find("\0")
    if position >= 0:
        raise BadRequest(
            f"{what} contains a NUL byte (at character {position}), which cannot be passed "
            "to a command",
            backend=backend,
        )
    return value


def _encodable(text: str) -> str:
    """``text`` with lone surrogates replaced, so it always encodes as UTF-8."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _exit_description(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"killed by signal {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _tail(outcome: ProcessOutcome) -> str:
    if outcome.stderr.strip():
        return outcome.stderr_tail(TAIL)
    return _shorten(outcome.text.strip(), from_end=True) or "no output"


def _shorten(text: str, *, from_end: bool = False) -> str:
    if len(text) <= TAIL:
        return text
    return "…" + text[-TAIL:] if from_end else text[:TAIL] + "…"
