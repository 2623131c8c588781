"""``llm-mux doctor``: check every backend at once, without spending tokens.

A CLI backend is available when its command resolves to an executable (and a known agent
CLI's ``--version`` answers); an HTTP backend when ``GET …/models`` (or the native
equivalent) answers within 5 s, not with a 404; a local model when its file loads. A missing
``${VAR}`` makes a backend unavailable, naming the variable. ``--probe`` (opt-in: it may cost
tokens) also sends each available backend one tiny prompt and reports the class of any
failure. Exit 1 when an enabled backend is unavailable. With ``[shared]``, also whether its
Redis answers (exit 1 only under ``on_error = "fail"``: otherwise a run goes on with local
limits). With a ``memory_url``, also whether the memory database answers (exit 1 when it
does not: store steps would fail), password masked.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from llm_mux.cli.options import get_settings, global_options

if TYPE_CHECKING:
    from llm_mux.backends.http import HttpClientHolder
    from llm_mux.config import Config

CHECK_DEADLINE = 30.0  # s; each HTTP probe has its own 5 s limit, a local model may load longer
PROBE_PROMPT = "Reply with the single word: ok"
PROBE_TIMEOUT = 60.0  # s at most for the probe prompt (less when the backend's timeout is less)


@dataclass
class Verdict:
    name: str
    kind: str
    enabled: bool
    available: bool
    detail: str
    duration_ms: int
    probe: dict[str, Any] | None = None

    @property
    def blocking(self) -> bool:
        return self.enabled and not self.available

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "enabled": self.enabled,
            "available": self.available,
            "detail": self.detail,
            "duration_ms": self.duration_ms,
            **({"probe": self.probe} if self.probe is not None else {}),
        }


async def _probe(name: str, config: Config, client: HttpClientHolder) -> dict[str, Any]:
    """Send the probe prompt once (no retries); what came back, or the failure's class."""
    from llm_mux.backends.base import Request
    from llm_mux.backends.build import build_backend
    from llm_mux.errors import BackendError, LlmMuxError

    cfg = config.backends[name]
    timeout = min(float(cfg.timeout or config.defaults.timeout), PROBE_TIMEOUT)
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout + 5):
            backend = build_backend(name, config, client=client)
            response = await backend.complete(Request(PROBE_PROMPT, timeout=timeout))
    except TimeoutError:
        return {"ok": False, "class": "Timeout", "detail": f"no answer within {timeout:g} s"}
    except BackendError as exc:
        return {"ok": False, "class": exc.error_class, "status": exc.status, "detail": exc.detail}
    except LlmMuxError as exc:
        return {"ok": False, "class": "Failed", "detail": exc.message}
    answer = " ".join(response.text.split())
    usage = response.usage.as_dict() if response.usage is not None else None
    elapsed = int((time.monotonic() - started) * 1000)
    shown = answer if len(answer) <= 60 else answer[:60] + "…"
    return {"ok": True, "answer": shown, "duration_ms": elapsed, "usage": usage}


def _probe_text(probe: dict[str, Any]) -> str:
    if probe["ok"]:
        return f"probe answered in {probe['duration_ms']} ms: {probe['answer'] or '(empty)'}"
    status = f" (HTTP {probe['status']})" if probe.get("status") is not None else ""
    return f"probe failed: {probe['class']}{status}: {probe['detail']}"


async def _check_one(
    name: str, config: Config, client: HttpClientHolder, probe: bool = False
) -> Verdict:
    from llm_mux.backends.build import build_backend
    from llm_mux.config.expand import missing_variables
    from llm_mux.errors import LlmMuxError

    cfg = config.backends[name]
    started = time.monotonic()

    def verdict(available: bool, detail: str) -> Verdict:
        elapsed = int((time.monotonic() - started) * 1000)
        return Verdict(name, cfg.kind, cfg.enabled, available, detail, elapsed)

    if not cfg.enabled:
        return verdict(False, "disabled (enabled = false)")
    for value in [cfg.command or "", cfg.api_key or "", *cfg.args, *cfg.env.values()]:
        missing = missing_variables(value)
        if missing:
            return verdict(False, f"environment variable '{missing[0]}' is not set")
    try:
        async with asyncio.timeout(CHECK_DEADLINE):
            detail = await build_backend(name, config, client=client).check()
    except TimeoutError:
        return verdict(False, f"no answer within {CHECK_DEADLINE:g} s")
    except LlmMuxError as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        return verdict(False, exc.message.removeprefix(f"backend '{name}': ") + hint)
    if not probe:
        return verdict(True, detail)
    found = await _probe(name, config, client)
    checked = verdict(found["ok"], f"{detail}; {_probe_text(found)}")
    checked.probe = found
    return checked


async def check_all(config: Config, probe: bool = False) -> list[Verdict]:
    """Check every configured backend concurrently, in config order."""
    from llm_mux.backends.http import HttpClientHolder

    client = HttpClientHolder()
    try:
        return list(
            await asyncio.gather(
                *(_check_one(name, config, client, probe) for name in config.backends)
            )
        )
    finally:
        await client.aclose()


@dataclass
class MemoryVerdict:
    """Whether the memory database answers; ``configured`` when a memory_url names it."""

    location: str
    configured: bool
    available: bool
    detail: str

    @property
    def blocking(self) -> bool:
        return self.configured and not self.available

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.location,
            "configured": self.configured,
            "available": self.available,
            "detail": self.detail,
        }


def check_memory(config: Config) -> MemoryVerdict:
    """Ping the memory database ``memory_url`` names (or the default file outside any ecosystem)."""
    from llm_mux.errors import LlmMuxError
    from llm_mux.memory import MemoryStore
    from llm_mux.memory.urls import configured_url

    try:
        url = configured_url(config.defaults.memory_url)
        store = MemoryStore.for_ecosystem(None, url)
    except LlmMuxError as exc:
        return MemoryVerdict("memory_url", True, False, exc.message)
    try:
        return MemoryVerdict(store.location, url is not None, True, store.database.ping())
    except LlmMuxError as exc:
        return MemoryVerdict(store.location, url is not None, False, exc.message)


@dataclass
class SharedVerdict:
    """Whether the Redis of ``[shared]`` answers; ``url`` has its password masked."""

    url: str
    available: bool
    detail: str
    blocking: bool

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "available": self.available, "detail": self.detail}


async def check_shared(config: Config) -> SharedVerdict | None:
    """PING the shared-limits Redis, when ``[shared]`` is set."""
    settings = config.shared_settings()
    if settings is None:
        return None
    from llm_mux.backends.shared_limits import RedisDown, ping
    from llm_mux.errors import LlmMuxError
    from llm_mux.secrets import mask_url

    url = mask_url(settings.redis_url or "")
    try:
        detail = await ping(settings)
    except (RedisDown, LlmMuxError) as exc:
        reason = exc.reason if isinstance(exc, RedisDown) else exc.message
        return SharedVerdict(url, False, reason, settings.on_error == "fail")
    return SharedVerdict(url, True, detail, False)


def _print_shared(shared: SharedVerdict | None) -> None:
    if shared is not None:
        state = shared.detail if shared.available else f"unavailable ({shared.detail})"
        click.echo(f"Shared limits: Redis {shared.url} {state}")


def _status(verdict: Verdict) -> Any:
    from rich.text import Text

    if not verdict.enabled:
        return Text("disabled", style="dim")
    if verdict.available:
        return Text("available", style="green")
    return Text("unavailable", style="bold red")


def _print_console(verdicts: list[Verdict]) -> None:
    from llm_mux.cli.list_cmd import print_table

    if not verdicts:
        click.echo("No backends configured. Run `llm-mux init` to write a starter config.")
        return
    rows = [[v.name, v.kind, _status(v), v.detail] for v in verdicts]
    print_table("Backends", ["name", "type", "status", "detail"], rows)
    blocking = [v.name for v in verdicts if v.blocking]
    if blocking:
        click.echo(f"{len(blocking)} enabled backend(s) unavailable: {', '.join(blocking)}")


@click.command("doctor")
@click.option(
    "--probe",
    is_flag=True,
    help="Also send each available backend one tiny prompt (may cost tokens).",
)
@global_options
def doctor_command(probe: bool) -> int:
    """Check every backend concurrently; exit 1 if an enabled one is unavailable.

    \b
    Examples:
      llm-mux doctor
      llm-mux doctor --probe        # one tiny prompt each; may cost tokens
      llm-mux doctor --output json
    """
    from llm_mux import runtime
    from llm_mux.cli.common import emit_json, load

    settings = get_settings()
    config = load(settings)

    async def check() -> tuple[list[Verdict], SharedVerdict | None, MemoryVerdict]:
        memory = asyncio.ensure_future(asyncio.to_thread(check_memory, config))
        return await check_all(config, probe), await check_shared(config), await memory

    if probe:
        click.echo(
            f"probing: sending {PROBE_PROMPT!r} to each available backend (may cost tokens)",
            err=True,
        )
    verdicts, shared, memory = runtime.run(check)
    serve = _serve_report(config)
    for warning in config.warnings():
        click.echo(f"warning: {warning}", err=True)
    if settings.json:
        backends = {v.name: v.as_dict() for v in verdicts}
        for name, backend in config.backends.items():
            backends[name]["warnings"] = backend.ignored_keys()
        document: dict[str, Any] = {"backends": backends, "serve": serve}
        if shared is not None:
            document["shared"] = shared.as_dict()
        document["memory"] = memory.as_dict()
        emit_json(document)
    elif settings.quiet:
        for v in verdicts:
            state = "available" if v.available else ("disabled" if not v.enabled else "unavailable")
            click.echo(f"{v.name}\t{state}")
        if shared is not None:
            click.echo(f"[shared]\t{'available' if shared.available else 'unavailable'}")
        click.echo(f"memory\t{'available' if memory.available else 'unavailable'}")
    else:
        _print_console(verdicts)
        _print_serve(serve)
        _print_shared(shared)
        _print_memory(memory)
    blocked = any(v.blocking for v in verdicts) or (shared is not None and shared.blocking)
    return 1 if blocked or memory.blocking else 0


def _print_memory(memory: MemoryVerdict) -> None:
    from llm_mux.secrets import redact

    state = "answers" if memory.available else "UNAVAILABLE"
    click.echo(redact(f"memory database {memory.location}: {state}: {memory.detail}"))


def _serve_report(config: Config) -> dict[str, Any]:
    from llm_mux.serve.report import serve_report

    report = serve_report(config)
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    return report


def _print_serve(report: dict[str, Any]) -> None:
    keys = report["api_keys"]
    click.echo(
        f"serve: {report['url']}, {keys} client key{'s' if keys != 1 else ''}, "
        f"{len(report['models'])} models, grace {report['grace_s']:g} s"
    )
