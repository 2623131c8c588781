"""Running the application on uvicorn: one process, or ``--workers N`` on one port.

SIGTERM or SIGINT stops accepting at once; requests in flight may finish within ``grace``,
then are cancelled (their CLI process groups killed); the exit code is 0. A second signal
cancels at once. The application itself does not depend on uvicorn (see :mod:`.app`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_mux.config import Config, load_config
from llm_mux.config.expand import expand
from llm_mux.errors import ConfigError, UsageError
from llm_mux.serve.access import AccessLog
from llm_mux.serve.app import ServeApp

ENV_OPTIONS = "LLM_MUX_SERVE_OPTIONS"  # how ``--workers`` hands the options to each worker


@dataclass(frozen=True)
class Options:
    """What the command line decided, passed on to every worker."""

    host: str
    port: int
    workers: int
    no_auth: bool
    config_files: list[str]
    team: str | None
    output: str
    debug: bool


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_keys(config: Config) -> list[str]:
    """The client keys, ``${VAR}`` expanded (and registered as secrets)."""
    return [
        expand(key, owner="[serve]", field="api_keys", secret=True) for key in config.serve.api_keys
    ]


def check_exposure(options: Options, keys: list[str]) -> None:
    """Listening beyond loopback without keys is refused unless ``--no-auth``."""
    if not keys and not options.no_auth and not is_loopback(options.host):
        raise ConfigError(
            f"refusing to listen on {options.host} without client keys: set [serve] api_keys "
            '(e.g. api_keys = ["${LLM_MUX_SERVE_KEY}"]) or pass --no-auth'
        )


def build_app(config: Config, options: Options) -> ServeApp:
    """The application for ``config``: keys expanded, team detected as ``ask`` does."""
    from llm_mux.teams import detect_team, project_root

    keys = api_keys(config)
    root = project_root(Path.cwd())
    team = detect_team(config, root, options.team)
    access = AccessLog(json_lines=options.output == "json", quiet=options.output == "quiet")
    return ServeApp(config, api_keys=keys, team=team, cwd=root, access=access)


def worker_app() -> ServeApp:
    """The factory each ``--workers`` process calls (options come in the environment)."""
    options = Options(**json.loads(os.environ[ENV_OPTIONS]))
    if options.debug:
        from llm_mux.logs import enable_debug

        enable_debug()
    app = build_app(load_config(tuple(options.config_files)), options)
    settle()
    return app


def settle() -> None:
    """Leave what start-up built out of every later garbage collection.

    The modules, config and app live as long as the server, yet a full collection walks
    them all: with 1,000 streams open, each took 60-90 ms of CPU, a pause for every one
    of them. Frozen, a full collection walks only what requests made (about 25 ms there).
    """
    import gc

    gc.collect()
    gc.freeze()


def uvicorn_module() -> Any:
    try:
        import uvicorn
    except ImportError:
        raise UsageError(
            "llm-mux serve needs the serve extra: pip install 'llm-mux[serve]'"
        ) from None
    return uvicorn


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: one the OS picks); UsageError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(config: Config, options: Options) -> None:
    """Serve until SIGTERM/SIGINT; return once requests in flight are done (exit 0)."""
    uvicorn = uvicorn_module()
    from llm_mux.serve.protocol import CoalescingHttpProtocol

    keys = api_keys(config)
    check_exposure(options, keys)
    app = build_app(config, options)  # checks [serve] models before binding
    sock = bind(options.host, options.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    grace = config.serve.grace_seconds
    common: dict[str, Any] = {
        "log_level": "debug" if options.debug else "warning",
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": grace,
        "lifespan": "on",
        "timeout_keep_alive": 30,
        "loop": "auto",  # uvloop when installed (the serve extra): accepts and reads in C
        "http": CoalescingHttpProtocol,  # a class: older uvicorn takes only its own names as text
        "ws": "none",
    }
    _say(f"llm-mux serve: listening on http://{shown}:{port} ({len(app.models)} models)")
    if options.workers > 1:
        os.environ[ENV_OPTIONS] = json.dumps(asdict(options))
        target = "llm_mux.serve.server:worker_app"
        cfg = uvicorn.Config(
            target,
            factory=True,
            workers=options.workers,
            timeout_worker_healthcheck=30,  # a busy machine is not a hung worker
            **common,
        )
        from uvicorn.supervisors import Multiprocess

        Multiprocess(cfg, sockets=[sock]).run()
        return
    from llm_mux.serve.uvicorn_server import DrainingServer

    settings = uvicorn.Config(app, **common)
    settings.load()  # the protocol and the loop imported now, so that settle() covers them
    settle()
    server = DrainingServer(settings)
    try:
        server.run(sockets=[sock])
    finally:
        from llm_mux import process

        process.kill_all_groups()
    _say("llm-mux serve: stopped")


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
