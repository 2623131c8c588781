"""Rate and concurrency limits shared by every process of a namespace, through Redis (SPEC §8).

One script call per request takes a concurrency slot and reserves a start time (GCRA) for
the request's rate group; Redis ``TIME`` is the only clock. The answer's token usage, a 429's
pause and the slot's release go back in one fire-and-forget call. A held slot is a token in
a sorted set with a lease expiry that this process renews every lease/3, so a holder that
dies frees its slots within one lease.

Redis refused, unreachable or slower than ``timeout_ms``: with ``on_error = "local"`` one
warning per process, the same limits per process, Redis tried again at most every 5 s;
with ``"fail"`` the request fails as :class:`Unavailable`, never retried, nothing sent.
redis-py is imported here only, when ``[shared]`` is set; its own retries are turned off
(it would otherwise retry a silent server for seconds) so this module owns the policy.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import secrets as random_tokens
import socket
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from llm_mux.backends.limits import (
    MAX_LATE_RETRIES,
    LocalLimiter,
    LocalSlot,
    now_ms,
    rate_limit_pause,
    start_at,
)
from llm_mux.backends.redis_scripts import ACQUIRE, UPDATE
from llm_mux.errors import ConfigError, Unavailable
from llm_mux.logs import get_logger
from llm_mux.secrets import mask_url, redact

if TYPE_CHECKING:
    from llm_mux.backends.pacing import GroupLimits
    from llm_mux.config import Shared

RETRY_DOWN_S = 5.0  # an unreachable Redis is tried again at most this often
BUSY_POLL_S = (0.005, 0.05)  # every slot taken: ask again after this long, doubling
log = get_logger("limits.shared")
_warned: set[str] = set()  # one warning per process and Redis


class RedisDown(Exception):
    """Redis did not answer in time or refused; ``reason`` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redis_location(url: str) -> str:
    """``HOST:PORT`` (or the socket path) of a Redis URL; never its password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return parts.path or "?"
        host = parts.hostname or "localhost"
        return f"{host}:{parts.port or 6379}"
    except ValueError:
        return "?"


def connect(settings: Shared) -> Redis:
    """A client whose every call is bounded by ``timeout_ms`` and never retried by redis-py."""
    from llm_mux.config.expand import expand

    url = expand(settings.redis_url or "", owner="[shared]", field="redis_url", secret=True)
    mask_url(url)  # registers the password, as written and decoded
    timeout = settings.timeout_ms / 1000
    try:
        return Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        raise ConfigError(
            f"[shared]: invalid redis_url {mask_url(url)}: {redact(str(exc))}"
        ) from None


def _reason(exc: BaseException, timeout_ms: int) -> str:
    """A short, secret-free cause: "connection refused", "no answer within 250 ms", …"""
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return f"no answer within {timeout_ms} ms"
    text = str(exc)
    if isinstance(exc, AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH")):
        return "authentication failed"
    errno = re.match(r"Error (-?\d+) connecting", text)
    if errno is not None:
        code = int(errno.group(1))
        return os.strerror(code).lower() if code > 0 else "host not found"
    return redact(unquote(text))[:200] or type(exc).__name__


def _stderr(text: str) -> None:
    try:
        sys.stderr.write(redact(text) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class SharedLimiter:
    """Group limits kept in Redis for every process of ``namespace``; local ones as fallback."""

    def __init__(self, settings: Shared, local: LocalLimiter) -> None:
        self.settings = settings
        self.local = local
        self.where = redis_location(settings.redis_url or "")
        self._redis = connect(settings)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._update = self._redis.register_script(UPDATE)
        self._timeout = settings.timeout_ms / 1000
        self._down_until = 0.0  # monotonic s; while in the future, use local limits
        self._rtt_ms: float | None = None
        self._probing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._held: dict[str, tuple[str, str]] = {}  # token -> (rate key, slots key)
        self._renewer: asyncio.Task[None] | None = None
        prefix = f"{socket.gethostname()}:{os.getpid()}:{random_tokens.token_hex(4)}"
        self._tokens = (f"{prefix}:{n}" for n in itertools.count())

    def keys(self, group: str) -> tuple[str, str]:
        tag = "{" + f"{self.settings.namespace}:{group}" + "}"
        return f"{tag}:rate", f"{tag}:slots"

    def slot(self, backend: str) -> SharedSlot:
        return SharedSlot(self, backend, self.local)

    async def call(self, script: Any, keys: tuple[str, str], args: list[Any]) -> Any:
        """One script call within ``timeout_ms``, connecting included."""
        try:
            async with asyncio.timeout(self._timeout):
                return await script(keys=list(keys), args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            if isinstance(exc, ResponseError) and "NOSCRIPT" not in str(exc):
                log.debug("redis refused a script call: %s", exc)
            raise RedisDown(_reason(exc, self.settings.timeout_ms)) from exc

    # -- availability ------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether to ask Redis now: it is up, or it is time for one request to probe it."""
        if self.settings.on_error == "fail":
            return True
        if self._down_until == 0.0:
            return True
        if self._probing or asyncio.get_running_loop().time() < self._down_until:
            return False
        self._probing = True
        return True

    @property
    def is_down(self) -> bool:
        return self._down_until != 0.0

    async def acquire(
        self, backend: str, keys: tuple[str, str], args: list[Any]
    ) -> tuple[int, float] | None:
        """The acquire script's status and when to act on it (``now_ms`` clock), or None
        when local limits apply now.

        The script's wait counts from when Redis ran it; that is taken as the send time
        plus the fastest round trip seen, so a reply slowed down on its way (a busy
        machine) makes the request late, never early.
        """
        if not self.usable():
            return None
        sent = now_ms()
        try:
            status, ms = await self.call(self._acquire, keys, args)
        except RedisDown as error:
            self.down(error, backend)  # raises under on_error = "fail"
            return None
        finally:
            self._probing = False
        self.answered()
        self._note_rtt(now_ms() - sent)
        return int(status), sent + (self._rtt_ms or 0.0) + float(ms)

    def _note_rtt(self, rtt: float) -> None:
        """The fastest round trip, rising slowly if the network path gets slower."""
        if self._rtt_ms is None or rtt < self._rtt_ms:
            self._rtt_ms = rtt
        else:
            self._rtt_ms += (rtt - self._rtt_ms) * 0.05

    def answered(self) -> None:
        if self._down_until:
            log.debug("shared limits at %s answer again", self.where)
        self._down_until = 0.0

    def down(self, error: RedisDown, backend: str) -> None:
        """Redis failed: fail the request, or warn once and use local limits for 5 s."""
        message = f"shared limits unavailable at {self.where} ({error.reason})"
        if self.settings.on_error == "fail":
            # not_found: never retried, like a missing command
            raise Unavailable(message, backend=backend, not_found=True) from None
        self._down_until = asyncio.get_running_loop().time() + RETRY_DOWN_S
        log.debug("%s; local limits for %g s", message, RETRY_DOWN_S)
        if self.where not in _warned:
            _warned.add(self.where)
            _stderr(f"warning: {message}; using local limits")

    # -- slots and their leases --------------------------------------------------------

    def new_token(self) -> str:
        return next(self._tokens)

    def hold(self, token: str, keys: tuple[str, str]) -> None:
        self._held[token] = keys
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    def settle(self, token: str, limits: GroupLimits, tokens: int, pause_s: float | None) -> None:
        """Release ``token``, charge usage, apply a pause: one call, not awaited."""
        keys = self._held.pop(token, None) or self.keys(limits.name)
        args = [token, 0, tokens, limits.ms_per_token, (pause_s or 0) * 1000]
        task = asyncio.get_running_loop().create_task(self._quietly(self._update, keys, args))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quietly(self, script: Any, keys: tuple[str, str], args: list[Any]) -> None:
        try:
            await self.call(script, keys, args)
        except RedisDown as exc:
            log.debug("shared limits update lost (%s); the lease expires instead", exc.reason)

    async def _renew(self) -> None:
        """Extend every held lease each lease/3, while any is held."""
        lease = self.settings.lease
        while self._held:
            await asyncio.sleep(lease / 3000)
            held = list(self._held.items())
            await asyncio.gather(
                *(
                    self._quietly(self._update, keys, [token, lease, 0, 0, 0])
                    for token, keys in held
                )
            )

    async def aclose(self) -> None:
        """Let pending releases finish (each bounded by the timeout), then disconnect."""
        if self._renewer is not None:
            self._renewer.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass


class SharedSlot(LocalSlot):
    """One request's slot: local semaphores, then Redis (or local pacing when it is down)."""

    __slots__ = ("_backend", "_limiter", "_token", "_used")

    def __init__(self, limiter: SharedLimiter, backend: str, local: LocalLimiter) -> None:
        super().__init__(local.group(backend), local.total)
        self._limiter = limiter
        self._backend = backend
        self._token: str | None = None
        self._used = 0

    async def admit(self) -> None:
        """Take the group's shared slot and wait for its shared schedule."""
        limits, limiter = self._group.limits, self._limiter
        keys = limiter.keys(limits.name)
        busy_wait = BUSY_POLL_S[0]
        token = limiter.new_token() if limits.max_concurrent else ""
        late_retries = 0
        while True:
            args = [
                limits.interval_ms,
                limits.tolerance_ms,
                limits.ms_per_token,
                limits.max_concurrent or 0,
                token,
                limiter.settings.lease,
            ]
            answer = await limiter.acquire(self._backend, keys, args)
            if answer is None:
                return await self._group.pace()
            status, due = answer
            if status == 1:
                if token:
                    self._token = token
                    limiter.hold(token, keys)
                if not limits.interval_ms:  # only a pause to wait for: no schedule to keep
                    await asyncio.sleep(max(0.0, due - now_ms()) / 1000)
                    return None
                if not await start_at(due, limits):
                    return None
                late_retries += 1
                if late_retries >= MAX_LATE_RETRIES:
                    return None  # late again and again: go rather than never
            elif status == 0:  # the minute's token budget is spent
                await asyncio.sleep(max(0.0, due - now_ms()) / 1000)
            else:  # every slot is taken: ask again soon, less often the longer it lasts
                await asyncio.sleep(busy_wait)
                busy_wait = min(busy_wait * 2, BUSY_POLL_S[1])

    def charge(self, tokens: int) -> None:
        self._used += tokens
        super().charge(tokens)

    def settle(self, exc: BaseException | None) -> None:
        """Release the shared slot, charge the usage, spread a 429's pause (one call), then
        pause the local group too."""
        self._give_back(exc)
        super().settle(exc)

    def _give_back(self, exc: BaseException | None) -> None:
        pause = rate_limit_pause(exc)
        limits = self._group.limits
        used = self._used if limits.tpm else 0
        token, self._token = self._token, None
        if token is None and self._limiter.is_down:
            return  # admitted locally; Redis is tried again by the next request
        if token is not None or used or pause:
            self._limiter.settle(token or "", limits, used, pause)


async def ping(settings: Shared) -> str:
    """PING the shared-limits Redis within ``timeout_ms``; the detail, or :class:`RedisDown`."""
    client = connect(settings)
    started = time.monotonic()
    try:
        async with asyncio.timeout(settings.timeout_ms / 1000):
            await client.ping()
    except (RedisError, OSError, TimeoutError) as exc:
        raise RedisDown(_reason(exc, settings.timeout_ms)) from None
    finally:
        try:
            await client.aclose()
        except (RedisError, OSError):
            pass
    return f"answers (PING {(time.monotonic() - started) * 1000:.1f} ms)"
