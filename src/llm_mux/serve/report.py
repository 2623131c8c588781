"""What ``doctor`` says about ``[serve]``: where it would listen, and what is risky."""

from __future__ import annotations

from typing import Any

from llm_mux.config import Config
from llm_mux.errors import ConfigError


def serve_report(config: Config) -> dict[str, Any]:
    """``[serve]`` as doctor shows it: never the keys themselves, only how many."""
    from llm_mux.serve.models import exposed_models
    from llm_mux.serve.server import is_loopback

    serve = config.serve
    warnings = []
    if not is_loopback(serve.host) and not serve.api_keys:
        warnings.append(
            f"[serve] host {serve.host} is not loopback and api_keys is empty: "
            "serve refuses to start there without --no-auth"
        )
    try:
        models = exposed_models(config)
    except ConfigError as exc:
        models, warnings = [], [*warnings, exc.message]
    return {
        "url": f"http://{serve.host}:{serve.port}",
        "api_keys": len(serve.api_keys),
        "models": models,
        "max_body_mb": serve.max_body_mb,
        "grace_s": serve.grace_seconds,
        "cors_origins": serve.cors_origins,
        "warnings": warnings,
    }
