"""``llm-mux doctor``: check every backend at once, without spending tokens.

A CLI backend is available when its command resolves to an executable; an HTTP backend when
``GET …/models`` (or the native equivalent) answers within 5 s; a local model when its file
loads. A missing ``${VAR}`` makes a backend unavailable, naming the variable. Exit 1 when an
enabled backend is unavailable.
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


@dataclass
class Verdict:
    name: str
    kind: str
    enabled: bool
    available: bool
    detail: str
    duration_ms: int

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
        }


async def _check_one(name: str, config: Config, client: HttpClientHolder) -> Verdict:
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
        return verdict(False, exc.message.removeprefix(f"backend '{name}': "))
    return verdict(True, detail)


async def check_all(config: Config) -> list[Verdict]:
    """Check every configured backend concurrently, in config order."""
    from llm_mux.backends.http import HttpClientHolder

    client = HttpClientHolder()
    try:
        return list(
            await asyncio.gather(*(_check_one(name, config, client) for name in config.backends))
        )
    finally:
        await client.aclose()


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
@global_options
def doctor_command() -> int:
    """Check every backend concurrently; exit 1 if an enabled one is unavailable.

    \b
    Examples:
      llm-mux doctor
      llm-mux doctor --output json
    """
    from llm_mux import runtime
    from llm_mux.cli.common import emit_json, load

    settings = get_settings()
    config = load(settings)
    verdicts = runtime.run(lambda: check_all(config))
    serve = _serve_report(config)
    if settings.json:
        emit_json({"backends": {v.name: v.as_dict() for v in verdicts}, "serve": serve})
    elif settings.quiet:
        for v in verdicts:
            state = "available" if v.available else ("disabled" if not v.enabled else "unavailable")
            click.echo(f"{v.name}\t{state}")
    else:
        _print_console(verdicts)
        _print_serve(serve)
    return 1 if any(v.blocking for v in verdicts) else 0


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
