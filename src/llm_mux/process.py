"""The one subprocess runner.

Every child llm-mux starts (CLI backends, shell steps, verify commands) goes through
:func:`run_process`, so each gets the same guarantees: its own session and process group,
stdin closed unless we feed it, stdout/stderr captured as bytes with a cap, and on timeout,
cancellation or interruption the *whole group* is sent SIGTERM and then SIGKILL — no
grandchild outlives llm-mux. Live groups are tracked so a signal handler can stop them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from llm_mux.errors import LlmMuxError
from llm_mux.values import Value, field

MiB = 1024 * 1024
DEFAULT_MAX_OUTPUT = 64 * MiB
STDERR_CAP = 1 * MiB
KILL_GRACE = 2.0
_READ_CHUNK = 256 * 1024
_LINGER = 0.5  # s to wait for pipes after the leader exits
_AFTER_KILL = 0.3  # s for the killed group's pipes to close before we close our ends
_EXIT_POLL = 0.05

SHUTDOWN_GRACE = 1.0  # s between SIGTERM and SIGKILL once the run is being interrupted

_live_groups: set[int] = set()
_shutdown_signal: int | None = None  # the signal interrupting the run, once it arrived
_forwarded: set[int] = set()  # groups that were sent it


class ProcessError(LlmMuxError):
    """A child process could not be started or did not finish normally."""


class CommandNotFound(ProcessError):
    """The executable does not exist or is not executable."""

    def __init__(self, command: str, reason: str) -> None:
        self.command = command
        super().__init__(f"command not found: {command} ({reason})")


class ProcessTimeout(ProcessError):
    """The child ran past its timeout; its group was killed.

    ``outcome`` names the command and how long it ran; what it wrote is not kept.
    """

    def __init__(self, outcome: ProcessOutcome, timeout: float) -> None:
        self.outcome = outcome
        self.timeout = timeout
        super().__init__(f"timed out after {timeout:g}s: {outcome.command_name}")


class OutputTooLarge(ProcessError):
    """The child wrote more than the capture cap; its group was killed (nothing is kept)."""

    def __init__(self, outcome: ProcessOutcome, limit: int) -> None:
        self.outcome = outcome
        self.limit = limit
        super().__init__(
            f"output of {outcome.command_name} exceeded the cap of {limit / MiB:g} MiB "
            "(defaults.max_output_mb); the process was stopped"
        )


class ProcessRequest(Value):
    """What to run. ``env=None`` inherits our environment; ``stdin=None`` closes stdin."""

    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] | None = field(default=None, repr=False)
    stdin: bytes | None = field(default=None, repr=False)
    timeout: float | None = None
    max_output: int = DEFAULT_MAX_OUTPUT
    kill_grace: float = KILL_GRACE
    # Called with ("stdout" | "stderr", chunk) as output arrives, to watch a child live.
    on_output: Callable[[str, bytes], None] | None = field(default=None, repr=False)


class ProcessOutcome(Value):
    """What a finished child left: exit code, captured bytes, wall time."""

    argv: tuple[str, ...]
    exit_code: int
    stdout: bytes = field(repr=False)
    stderr: bytes = field(repr=False)
    duration: float

    @property
    def command_name(self) -> str:
        return Path(self.argv[0]).name if self.argv else "?"

    @property
    def text(self) -> str:
        """stdout as text; invalid UTF-8 is replaced, never an error."""
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    def stderr_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters of stderr, for error messages."""
        text = self.stderr_text.strip()
        return text if len(text) <= limit else "…" + text[-limit:]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class _Capped(Exception):
    """Internal: a stream passed its cap."""


OutputHook = Callable[[bytes], None] | None


async def _read_stream(
    stream: asyncio.StreamReader | None, cap: int, truncate: bool, notify: OutputHook = None
) -> bytes:
    """Read a stream to EOF into a list of chunks (no quadratic copying).

    Past ``cap`` either raise (stdout: the caller kills the child) or keep reading and
    drop (stderr: only its tail matters, and the child must not block on a full pipe).
    """
    if stream is None:
        return b""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_READ_CHUNK):
        if notify is not None:
            notify(chunk)
        size += len(chunk)
        if size > cap:
            if not truncate:
                raise _Capped
            chunks.append(chunk)
            joined = b"".join(chunks)[-cap:]
            chunks, size = [joined], len(joined)
            continue
        chunks.append(chunk)
    return b"".join(chunks)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


async def _stop_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the child's whole group, then SIGKILL it after ``grace`` seconds.

    The leader may exit first while grandchildren linger in the group: they get SIGKILL too.
    """
    pgid = proc.pid
    if _shutdown_signal is None:
        _signal_group(pgid, signal.SIGTERM)
    else:  # interrupted: the user's own signal is the polite request, then a short grace
        grace = min(grace, SHUTDOWN_GRACE)
        if pgid not in _forwarded:  # started just as the signal arrived
            _forwarded.add(pgid)
            _signal_group(pgid, _shutdown_signal)
    with contextlib.suppress(asyncio.CancelledError):
        await _settled(proc, grace)
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(asyncio.CancelledError):
        await _settled(proc, grace)


async def _settled(proc: asyncio.subprocess.Process, within: float) -> None:
    """Wait up to ``within`` s until the child exited and its pipes closed, or its group is
    empty, whichever comes first.

    The pipes alone are no guide: a process that left the group (``setsid``) may hold them
    open for ever. The group alone is slow where dead members wait to be reaped.
    """
    waiters = {
        asyncio.ensure_future(proc.wait()),
        asyncio.ensure_future(_group_gone(proc, within)),
    }
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.wait(waiters)


async def _group_gone(proc: asyncio.subprocess.Process, within: float) -> None:
    """Wait until no live process is left in the child's group, or ``within`` seconds."""
    deadline = time.monotonic() + within
    delay = 0.001
    while _group_alive(proc) and time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 2, _EXIT_POLL)


def _group_alive(proc: asyncio.subprocess.Process) -> bool:
    """Whether a member of the child's group still runs.

    Once the leader has exited, members that died are zombies until their new parent reaps
    them — slowly, or never, under some container inits — so on Linux zombies do not count.
    """
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member we may not signal still exists
        return True
    return proc.returncode is None or _live_member(proc.pid)


def _live_member(pgid: int) -> bool:
    try:
        entries = [entry for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    except OSError:  # no /proc: count every member
        return True
    for entry in entries:
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[2] == str(pgid).encode() and fields[0] != b"Z":
            return True
    return False


def begin_shutdown(signum: int) -> None:
    """The run is being interrupted: forward ``signum`` to every child group, shorten grace.

    Children run in their own sessions, so a terminal's Ctrl-C reaches only llm-mux; it is
    passed on here so each child sees the signal the user sent.
    """
    global _shutdown_signal
    _shutdown_signal = signum
    _forwarded.update(_live_groups)
    kill_all_groups(signum)


def reset_shutdown() -> None:
    """A new run starts (only matters when one process runs several)."""
    global _shutdown_signal
    _shutdown_signal = None
    _forwarded.clear()


def kill_all_groups(signum: int = signal.SIGKILL) -> None:
    """Signal every live child group; used by the interruption handler and at exit."""
    for pgid in list(_live_groups):
        _signal_group(pgid, signum)


def live_group_count() -> int:
    return len(_live_groups)


async def _spawn(request: ProcessRequest) -> asyncio.subprocess.Process:
    env = dict(os.environ if request.env is None else request.env)
    try:
        return await asyncio.create_subprocess_exec(
            *request.argv,
            stdin=asyncio.subprocess.PIPE
            if request.stdin is not None
            else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(request.cwd) if request.cwd is not None else None,
            env=env,
            start_new_session=True,
            limit=_READ_CHUNK,
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(request.argv[0], "no such file or directory") from exc
    except PermissionError as exc:
        raise CommandNotFound(request.argv[0], "not executable") from exc
    except NotADirectoryError as exc:
        raise CommandNotFound(request.argv[0], "not a directory") from exc


async def _feed_stdin(proc: asyncio.subprocess.Process, data: bytes | None) -> None:
    if data is None or proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.write(data)
        await proc.stdin.drain()
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        proc.stdin.close()
        await proc.stdin.wait_closed()


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Wait for the leader's exit itself (``Process.wait`` also waits for the pipes).

    A pidfd becomes readable the moment the process exits; where pidfds are missing,
    poll with a short backoff.
    """
    if proc.returncode is not None:
        return
    try:
        fd = os.pidfd_open(proc.pid)
    except (OSError, AttributeError):
        await _poll_exit(proc)
        return
    try:
        await readable(fd)
    finally:
        os.close(fd)


async def readable(fd: int) -> None:
    """Wait on the event loop, without a thread, until ``fd`` can be read: a pidfd when
    its process exits, a terminal when a line was typed. Cancelling stops the wait."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def _poll_exit(proc: asyncio.subprocess.Process) -> None:
    delay = 0.001
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, _EXIT_POLL)


async def _communicate(
    proc: asyncio.subprocess.Process, request: ProcessRequest
) -> tuple[bytes, bytes]:
    """Feed stdin and read both streams until the child exits.

    When the leader exits but a grandchild still holds the pipes open, wait briefly, then
    kill the group so a stray background job cannot stall the run.
    """
    stdin_task = asyncio.ensure_future(_feed_stdin(proc, request.stdin))
    out_task = asyncio.ensure_future(
        _read_stream(proc.stdout, request.max_output, False, _hook(request, "stdout"))
    )
    err_task = asyncio.ensure_future(
        _read_stream(proc.stderr, STDERR_CAP, True, _hook(request, "stderr"))
    )
    exit_task = asyncio.ensure_future(_exited(proc))
    tasks = (stdin_task, out_task, err_task, exit_task)
    try:
        await asyncio.wait({exit_task, out_task}, return_when=asyncio.FIRST_COMPLETED)
        if out_task.done():
            out_task.result()  # re-raises _Capped
        await exit_task
        _, lingering = await asyncio.wait({out_task, err_task}, timeout=_LINGER)
        if lingering:
            _signal_group(proc.pid, signal.SIGKILL)
            _, lingering = await asyncio.wait(lingering, timeout=_AFTER_KILL)
        if lingering:  # held open outside the group (``setsid … &``): keep what was written
            _close_pipes(proc)
        out, err = await out_task, await err_task
        await proc.wait()
        return out, err
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def _hook(request: ProcessRequest, stream: str) -> OutputHook:
    on_output = request.on_output
    if on_output is None:
        return None
    return lambda chunk: on_output(stream, chunk)


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Stop reading the child's pipes: the readers get EOF after what is already buffered.

    A process that left our group (``setsid``) may hold them open for as long as it likes;
    closing our ends now, while the loop runs, also spares the "Event loop is closed" noise
    asyncio prints when it finds the transport still open at exit. ``Process`` offers no
    public handle on its transport, hence the attribute lookup.
    """
    transport = getattr(proc, "_transport", None)
    if transport is not None and not transport.is_closing():
        transport.close()


def _without_output(request: ProcessRequest, code: int, started: float) -> ProcessOutcome:
    return ProcessOutcome(request.argv, code, b"", b"", time.monotonic() - started)


async def _spawn_shielded(request: ProcessRequest) -> asyncio.subprocess.Process:
    """Spawn so that a cancellation arriving mid-spawn still stops the started child.

    Without the shield, a child that started while ``create_subprocess_exec`` was being
    cancelled would be unknown to us, and its group would outlive the interruption.
    """
    spawning = asyncio.ensure_future(_spawn(request))
    try:
        return await asyncio.shield(spawning)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            proc = await spawning
            await _stop_group(proc, request.kill_grace)
        raise


async def run_process(request: ProcessRequest) -> ProcessOutcome:
    """Run ``request`` to completion and return its outcome (a non-zero exit is not an error).

    Raises :class:`CommandNotFound`, :class:`ProcessTimeout` or :class:`OutputTooLarge`.
    Cancelling the awaiting task stops the child's whole group before re-raising.
    """
    started = time.monotonic()
    proc = await _spawn_shielded(request)
    _live_groups.add(proc.pid)
    try:
        out, err = await asyncio.wait_for(_communicate(proc, request), request.timeout)
    except TimeoutError:
        await _stop_group(proc, request.kill_grace)
        raise ProcessTimeout(_without_output(request, -9, started), request.timeout or 0) from None
    except _Capped:
        await _stop_group(proc, request.kill_grace)
        raise OutputTooLarge(_without_output(request, -9, started), request.max_output) from None
    except BaseException:
        await _stop_group(proc, request.kill_grace)
        raise
    finally:
        _live_groups.discard(proc.pid)
        _close_pipes(proc)
    # The leader exited; anything it left running in its group dies with it.
    _signal_group(proc.pid, signal.SIGKILL)
    code = proc.returncode if proc.returncode is not None else -1
    return ProcessOutcome(request.argv, code, out, err, time.monotonic() - started)
