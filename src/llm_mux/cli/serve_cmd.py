"""``llm-mux serve``: every role and backend behind the OpenAI and Anthropic APIs."""

from __future__ import annotations

import click

from llm_mux.cli.options import get_settings, global_options


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default [serve] host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 4141).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes serving the one port.",
)
@click.option("--no-auth", is_flag=True, help="Allow a non-loopback address without api_keys.")
@global_options
def serve_command(host: str | None, port: int | None, workers: int, no_auth: bool) -> None:
    """Serve every role and backend over the OpenAI and Anthropic HTTP APIs.

    \b
    Examples:
      llm-mux serve                          http://127.0.0.1:4141
      OPENAI_BASE_URL=http://127.0.0.1:4141/v1 some-tool
      llm-mux serve --host 0.0.0.0 --workers 2   needs [serve] api_keys
    """
    from llm_mux.cli.common import load
    from llm_mux.serve.server import Options, serve, uvicorn_module

    uvicorn_module()
    settings = get_settings()
    config = load(settings)
    options = Options(
        host=host or config.serve.host,
        port=config.serve.port if port is None else port,
        workers=workers,
        no_auth=no_auth,
        config_files=[str(path) for path in settings.config],
        team=settings.team,
        output=settings.output,
        debug=settings.debug,
    )
    serve(config, options)
