"""HTTP backends against a real server on 127.0.0.1: requests, answers, failures, retries."""

from __future__ import annotations

import itertools
import json
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from llm_mux.backends.base import Request, Response
from llm_mux.backends.build import build_backend
from llm_mux.backends.http import HttpClientHolder
from llm_mux.config import Config
from llm_mux.errors import (
    AuthError,
    BackendError,
    BackendTimeout,
    BadRequest,
    ConfigError,
    ParseError,
    RateLimited,
    ServerError,
    Unavailable,
)
from llm_mux.roles import Multiplexer, RoleFailed
from tests.conftest import slack
from tests.fakes.fixtures import make_config
from tests.fakes.server import (
    FakeLLMServer,
    Reply,
    answer,
    drop,
    error,
    hang,
    html,
    rate_limited,
)

KEY = "sk-planted-secret-123"


def config_for(
    server: FakeLLMServer, kind: str = "openai", defaults: dict[str, Any] | None = None, **keys: Any
) -> Config:
    base = server.url + "/v1" if kind == "openai" else server.url
    table = {"type": kind, "command": base, "model": "m", "retry_delay": 1, **keys}
    return make_config({"b": table}, defaults=defaults)


async def complete(server: FakeLLMServer, kind: str = "openai", **keys: Any) -> Response:
    prompt = keys.pop("prompt", "hi")
    async with Multiplexer(config_for(server, kind, **keys)) as mux:
        result = await mux.call_backend("b", prompt)
    response = result.outcomes[0].response
    assert response is not None
    return response


async def failure(server: FakeLLMServer, kind: str = "openai", **keys: Any) -> BackendError:
    async with Multiplexer(config_for(server, kind, **keys)) as mux:
        with pytest.raises(RoleFailed) as caught:
            await mux.call_backend("b", "hi")
    found = caught.value.result.outcomes[0].error
    assert found is not None
    return found


async def test_openai_request_and_answer(
    llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    response = await complete(
        llm_server,
        api_key="${OPENAI_API_KEY}",
        system="be brief",
        max_tokens=50,
        temperature=0.2,
        params={"top_p": 0.5, "response_format": {"type": "json_object"}},
        prompt="what is 2+2",
    )
    assert response.text == "m answers: what is 2+2"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 5)
    seen = llm_server.requests[0]
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["Authorization"] == f"Bearer {KEY}"
    assert seen.body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "what is 2+2"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.5,
        "response_format": {"type": "json_object"},
    }


async def test_openai_without_a_key_sends_no_authorization(llm_server: FakeLLMServer) -> None:
    await complete(llm_server)
    assert "Authorization" not in llm_server.requests[0].headers


async def test_openai_streaming_accumulates_events(llm_server: FakeLLMServer) -> None:
    llm_server.script(answer("a streamed answer in pieces"))
    response = await complete(llm_server, stream=True)
    assert response.text == "a streamed answer in pieces"
    assert response.usage is not None and response.usage.output_tokens == 5
    assert llm_server.requests[0].body["stream"] is True


async def test_ollama_native_chat(llm_server: FakeLLMServer) -> None:
    response = await complete(llm_server, "ollama", max_tokens=9, temperature=0.0, prompt="yo")
    assert response.text == "m answers: yo"
    assert response.usage is not None and response.usage.input_tokens == 1
    seen = llm_server.requests[0]
    assert seen.path == "/api/chat"
    assert seen.body["stream"] is False
    assert seen.body["options"] == {"num_predict": 9, "temperature": 0.0}


async def test_ollama_streaming(llm_server: FakeLLMServer) -> None:
    llm_server.script(answer("one two three"))
    response = await complete(llm_server, "ollama", stream=True)
    assert response.text == "one two three"
    assert response.usage is not None and response.usage.output_tokens == 3


async def test_anthropic_messages(
    llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    response = await complete(
        llm_server, "anthropic", api_key="${ANTHROPIC_API_KEY}", system="sys", prompt="q"
    )
    assert response.text == "m answers: q"
    seen = llm_server.requests[0]
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in seen.headers
    assert seen.body == {
        "model": "m",
        "max_tokens": 4096,
        "system": "sys",
        "messages": [{"role": "user", "content": "q"}],
    }


SAMPLING_NAMES = [
    ("openai", {"max_tokens": 7, "temperature": 0.5, "stop": ["END", "##"]}),
    ("anthropic", {"max_tokens": 7, "temperature": 0.5, "stop_sequences": ["END", "##"]}),
    ("ollama", {"options": {"num_predict": 7, "temperature": 0.5, "stop": ["END", "##"]}}),
]


@pytest.mark.parametrize(("kind", "expected"), SAMPLING_NAMES)
async def test_a_requests_sampling_settings_use_each_apis_names(
    llm_server: FakeLLMServer, kind: str, expected: dict[str, Any]
) -> None:
    request = Request("hi", max_tokens=7, temperature=0.5, stop=("END", "##"))
    config = config_for(llm_server, kind, max_tokens=99, temperature=1.5)
    async with Multiplexer(config) as mux:
        await mux.call_backend("b", "hi", request=request)
    body = llm_server.requests[0].body
    assert {key: body[key] for key in expected} == expected


async def test_anthropic_version_and_streaming(llm_server: FakeLLMServer) -> None:
    llm_server.script(answer("streamed from claude"))
    response = await complete(llm_server, "anthropic", api_version="2099-01-01", stream=True)
    assert response.text == "streamed from claude"
    assert response.usage is not None and response.usage.output_tokens == 3
    assert llm_server.requests[0].headers["anthropic-version"] == "2099-01-01"


async def test_a_retried_failure_names_each_attempts_class(llm_server: FakeLLMServer) -> None:
    llm_server.script(error(503), rate_limited("0"), error(502))
    async with Multiplexer(config_for(llm_server, "openai", max_retries=2, retry_delay=1)) as mux:
        with pytest.raises(RoleFailed) as caught:
            await mux.call_backend("b", "hi")
    text = caught.value.result.outcomes[0].error_text or ""
    assert text.startswith("ServerError (HTTP 502)")
    assert text.endswith("(after 3 attempts: ServerError 503, RateLimited 429, ServerError 502)")


CACHED_USAGE = {
    "input_tokens": 1,
    "cache_creation_input_tokens": 4,
    "cache_read_input_tokens": 36,
    "output_tokens": 5,
}


async def test_anthropic_input_tokens_include_cache_reads_and_writes(
    llm_server: FakeLLMServer,
) -> None:
    message = {"content": [{"type": "text", "text": "cached"}], "usage": CACHED_USAGE}
    llm_server.script(Reply(body=json.dumps(message).encode()))
    response = await complete(llm_server, "anthropic")
    assert response.text == "cached"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (41, 5)


async def test_anthropic_streamed_input_tokens_include_the_cache(
    llm_server: FakeLLMServer,
) -> None:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    usage = {**CACHED_USAGE, "output_tokens": 1}
    delta = {"index": 0, "delta": {"type": "text_delta", "text": "cached"}}
    events = [
        event("message_start", {"message": {"usage": usage}}),
        event("content_block_delta", delta),
        event("message_delta", {"usage": {"output_tokens": 5}}),
        event("message_stop", {}),
    ]
    body = "".join(events).encode()
    llm_server.script(Reply(body=body, content_type="text/event-stream"))
    response = await complete(llm_server, "anthropic", stream=True)
    assert response.text == "cached"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (41, 5)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (401, AuthError),
        (403, AuthError),
        (429, RateLimited),
        (408, ServerError),
        (409, ServerError),
        (500, ServerError),
        (503, ServerError),
        (529, ServerError),
        (400, BadRequest),
        (404, BadRequest),
        (422, BadRequest),
    ],
)
async def test_status_maps_to_error_class(
    llm_server: FakeLLMServer, status: int, error_class: type[BackendError]
) -> None:
    llm_server.script(error(status, "provider says no"))
    found = await failure(llm_server, max_retries=0)
    assert type(found) is error_class
    assert found.status == status
    message = str(found)
    assert f"backend 'b': {found.error_class} (HTTP {status})" in message
    assert "provider says no" in message


async def test_invalid_key_wording_in_a_400_is_auth(llm_server: FakeLLMServer) -> None:
    llm_server.script(error(400, "API key not valid. Please pass a valid API key."))
    assert isinstance(await failure(llm_server, max_retries=0), AuthError)


async def test_html_instead_of_json_is_a_parse_error_quoting_it(
    llm_server: FakeLLMServer,
) -> None:
    page = "<html>" + "lorem ipsum " * 300 + "</html>"
    llm_server.script(Reply(body=page.encode(), content_type="text/html"))
    found = await failure(llm_server)
    assert isinstance(found, ParseError)
    assert "<html>lorem ipsum" in str(found)
    assert len(found.detail) < 600
    assert llm_server.count() == 1  # never retried


async def test_json_without_an_answer_is_a_parse_error(llm_server: FakeLLMServer) -> None:
    llm_server.script(Reply(body=b'{"id": "x", "choices": []}'))
    found = await failure(llm_server)
    assert isinstance(found, ParseError)
    assert '"choices": []' in str(found)


async def test_html_error_page_with_5xx_is_a_server_error(llm_server: FakeLLMServer) -> None:
    llm_server.script(html(502))
    found = await failure(llm_server, max_retries=0)
    assert isinstance(found, ServerError) and found.status == 502


async def test_hang_is_a_timeout(llm_server: FakeLLMServer) -> None:
    llm_server.script(hang())
    started = time.monotonic()
    found = await failure(llm_server, timeout=1)
    assert isinstance(found, BackendTimeout)
    assert 0.9 < time.monotonic() - started < 3


async def test_slow_answer_past_the_timeout_is_a_timeout(llm_server: FakeLLMServer) -> None:
    llm_server.script(answer("late", delay=2))
    assert isinstance(await failure(llm_server, timeout=1), BackendTimeout)


async def test_dropped_connection_is_a_retryable_server_error(llm_server: FakeLLMServer) -> None:
    llm_server.script(drop(), drop())
    response = await complete(llm_server, max_retries=2)
    assert response.attempts == 3
    llm_server.script(drop())
    found = await failure(llm_server, max_retries=0)
    assert isinstance(found, ServerError) and "connection error" in str(found)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_unavailable() -> None:
    table = {"command": f"http://127.0.0.1:{unused_port()}/v1", "model": "m", "max_retries": 0}
    async with Multiplexer(make_config({"b": table})) as mux:
        with pytest.raises(RoleFailed) as caught:
            await mux.call_backend("b", "hi")
    found = caught.value.result.outcomes[0].error
    assert isinstance(found, Unavailable) and not found.not_found


async def test_server_errors_are_retried_exactly_max_retries(llm_server: FakeLLMServer) -> None:
    llm_server.script(*[error(500) for _ in range(10)])
    found = await failure(llm_server, max_retries=2)
    assert isinstance(found, ServerError)
    assert llm_server.count() == 3


async def test_success_after_retries(llm_server: FakeLLMServer) -> None:
    llm_server.script(error(503), rate_limited())
    response = await complete(llm_server, max_retries=3)
    assert (response.attempts, llm_server.count()) == (3, 3)


async def test_401_is_never_retried(llm_server: FakeLLMServer) -> None:
    llm_server.script(error(401), error(401))
    assert isinstance(await failure(llm_server, max_retries=5), AuthError)
    assert llm_server.count() == 1


async def test_rate_limit_not_retried_when_disabled(llm_server: FakeLLMServer) -> None:
    llm_server.script(rate_limited(), rate_limited())
    await failure(llm_server, max_retries=3, retry_rate_limit=False)
    assert llm_server.count() == 1


def gaps(server: FakeLLMServer) -> list[float]:
    times = [r.at for r in server.requests]
    return [b - a for a, b in itertools.pairwise(times)]


async def test_retry_after_seconds_is_honoured(llm_server: FakeLLMServer) -> None:
    llm_server.script(rate_limited("1"))
    await complete(llm_server)
    assert 0.95 <= gaps(llm_server)[0] < 2


async def test_retry_after_http_date_is_honoured(llm_server: FakeLLMServer) -> None:
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    llm_server.script(rate_limited(format_datetime(when, usegmt=True)))
    await complete(llm_server)
    # the retry waits until the date, however late the first answer came on a busy machine
    retried_at = llm_server.requests[1].at + (time.time() - time.monotonic())
    assert retried_at >= when.timestamp() - 0.1
    assert gaps(llm_server)[0] < 3 * slack()


async def test_retry_after_ms_is_honoured(llm_server: FakeLLMServer) -> None:
    llm_server.script(rate_limited(ms="400"))
    await complete(llm_server)
    assert 0.38 <= gaps(llm_server)[0] < 1.5


async def test_unparseable_retry_after_falls_back_to_backoff(llm_server: FakeLLMServer) -> None:
    llm_server.script(rate_limited("inf"), rate_limited("-10"), rate_limited("soon"))
    response = await complete(llm_server)
    assert response.attempts == 4
    assert sum(gaps(llm_server)) < 1.5


async def test_asking_over_a_minute_fails_at_once(llm_server: FakeLLMServer) -> None:
    llm_server.script(rate_limited("120"), error(503, **{"Retry-After": "3600"}))
    started = time.monotonic()
    found = await failure(llm_server, max_retries=5)
    assert isinstance(found, RateLimited)
    assert "120 s" in str(found) and "not retried" in str(found)
    found = await failure(llm_server, max_retries=5)
    assert isinstance(found, RateLimited) and found.status == 503
    assert time.monotonic() - started < 1.5
    assert llm_server.count() == 2


async def test_one_pooled_connection_per_run(llm_server: FakeLLMServer) -> None:
    async with Multiplexer(config_for(llm_server)) as mux:
        for _ in range(5):
            await mux.call_backend("b", "hi")
    assert len({r.client for r in llm_server.requests}) == 1


async def test_answer_over_the_output_cap_is_a_parse_error(llm_server: FakeLLMServer) -> None:
    llm_server.script(answer("z" * (2 * 1024 * 1024)))
    found = await failure(llm_server, defaults={"max_output_mb": 1})
    assert isinstance(found, ParseError) and "max_output_mb" in str(found)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "ollama"])
async def test_a_stream_over_the_output_cap_is_a_parse_error(
    llm_server: FakeLLMServer, kind: str
) -> None:
    llm_server.script(answer(" ".join(["z" * 1023] * 2048)))  # 2 MiB in 1 KiB pieces
    found = await failure(llm_server, kind, stream=True, defaults={"max_output_mb": 1})
    assert isinstance(found, ParseError) and "max_output_mb" in str(found)
    assert found.error_class == "Parse"
    assert len(llm_server.requests) == 1  # not retried


async def test_url_query_is_kept_but_never_shown(
    llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("URL_TOKEN", "tok-in-url-789")
    command = llm_server.url + "/v1?api-version=1&token=${URL_TOKEN}"
    await complete(llm_server, command=command)
    llm_server.script(error(400))
    found = await failure(llm_server, command=command, max_retries=0)
    assert llm_server.requests[0].path == "/v1/chat/completions"
    assert "tok-in-url-789" not in str(found) and "api-version" not in str(found)


async def test_keys_never_reach_errors_or_logs(
    llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    llm_server.require_key = "the-right-key"
    with caplog.at_level(logging.DEBUG, logger="llm_mux"):
        found = await failure(llm_server, api_key="${OPENAI_API_KEY}", max_retries=1)
    assert isinstance(found, AuthError)
    assert KEY not in str(found)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST" in logged and KEY not in logged and "Authorization" not in logged


def backend_for(server: FakeLLMServer, kind: str = "openai", **keys: Any) -> Any:
    return build_backend("b", config_for(server, kind, **keys), client=HttpClientHolder())


@pytest.mark.parametrize(
    ("kind", "path"),
    [("openai", "/v1/models"), ("ollama", "/api/tags"), ("anthropic", "/v1/models")],
)
async def test_check_gets_the_models_endpoint(
    llm_server: FakeLLMServer, kind: str, path: str
) -> None:
    detail = await backend_for(llm_server, kind).check()
    assert "HTTP 200" in detail
    assert (llm_server.requests[0].method, llm_server.requests[0].path) == ("GET", path)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (error(404), Unavailable),
        (error(401), AuthError),
        (error(403), AuthError),
        (error(500), ServerError),
    ],
)
async def test_check_verdicts(
    llm_server: FakeLLMServer, reply: Reply, expected: type[BackendError] | None
) -> None:
    llm_server.script(reply)
    backend = backend_for(llm_server)
    if expected is None:
        assert "HTTP 404" in await backend.check()
    else:
        with pytest.raises(expected):
            await backend.check()


async def test_check_of_a_missing_variable_names_it(llm_server: FakeLLMServer) -> None:
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_VAR"):
        await backend_for(llm_server, api_key="${NO_SUCH_KEY_VAR}").check()


async def test_check_of_a_dead_server_is_unavailable() -> None:
    table = {"command": f"http://127.0.0.1:{unused_port()}", "model": "m"}
    built = build_backend("b", make_config({"b": table}), client=HttpClientHolder())
    with pytest.raises(Unavailable):
        await built.check()
