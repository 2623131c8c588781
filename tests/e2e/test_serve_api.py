"""``llm-mux serve`` driven by the official OpenAI and Anthropic SDKs (SPEC §9).

One server (a subprocess on a free port) serves every test of this module; the upstream
HTTP backends are a fake LLM server on 127.0.0.1 that wants its own key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx2 as httpx
import openai
import pytest

from tests.conftest import within
from tests.fakes.server import FakeLLMServer, Reply, drop, error, hang, html, rate_limited
from tests.serve_support import KEY, UPSTREAM_KEY, Served, start, stop

CONFIG = """
[serve]
api_keys = ["${{SERVE_KEY}}"]

[backends.up]
command = "{url}/v1"
model = "up-model"
api_key = "${{UPSTREAM}}"
stream = true
max_retries = 0

[backends.up_plain]
command = "{url}/v1"
model = "plain-model"
api_key = "${{UPSTREAM}}"
max_retries = 0

[backends.up_slow]
command = "{url}/v1"
model = "slow-model"
api_key = "${{UPSTREAM}}"
timeout = 1
max_retries = 0

[backends.anth]
type = "anthropic"
command = "{url}"
model = "anth-model"
api_key = "${{UPSTREAM}}"
stream = true
max_retries = 0

[backends.wrongkey]
command = "{url}/v1"
model = "wk-model"
api_key = "${{WRONG}}"
max_retries = 0

[backends.down]
command = "http://127.0.0.1:1/v1"
model = "x"
max_retries = 0

[backends.m_ok]
type = "mock"
response = "mock ok"

[backends.m_echo]
type = "mock"
echo = true

[backends.m_crash]
type = "mock"
fail = "crash"

[backends.m_rate]
type = "mock"
fail = "rate_limit"
retry_after = 2.5
max_retries = 0

[backends.m_parse]
type = "mock"
fail = "malformed_json"

[backends.m_off]
type = "mock"
enabled = false

[backends.c_echo]
command = "{bin}/fake-echo"

[backends.c_missing]
command = "no-such-command-anywhere"

[roles.fb]
backends = ["m_crash", "m_ok"]
execution = "fallback"

[roles.fb_fail]
backends = ["m_crash", "m_rate"]
execution = "fallback"

[roles.panel]
backends = ["m_ok", "m_echo"]
execution = "parallel"

[roles.spanel]
backends = ["up", "anth"]
execution = "parallel"

[roles.sfb]
backends = ["up", "up_plain"]
execution = "fallback"

[roles.m_ok]
backends = ["m_echo"]
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer(require_key=UPSTREAM_KEY).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def served(
    upstream: FakeLLMServer, fake_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("serve")
    config = CONFIG.format(url=upstream.url, bin=fake_bin)
    env = {"SERVE_KEY": KEY, "UPSTREAM": UPSTREAM_KEY, "WRONG": "sk-wrong-key-55555"}
    server = start(config, directory, env=env)
    yield server
    stop(server)


@pytest.fixture
def oai(served: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0, timeout=30)


@pytest.fixture
def ant(served: Served) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=served.url, api_key=KEY, max_retries=0, timeout=30)


def ask(client: openai.OpenAI, model: str, text: str = "hello") -> openai.types.chat.ChatCompletion:
    messages = [{"role": "user", "content": text}]
    return client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]


# -- endpoints ------------------------------------------------------------------------------


def test_health_needs_no_key(served: Served) -> None:
    response = httpx.get(served.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_models_lists_roles_first_then_enabled_backends(oai: openai.OpenAI) -> None:
    models = [m.id for m in oai.models.list()]
    roles = ["fb", "fb_fail", "panel", "spanel", "sfb", "m_ok"]
    assert models[: len(roles)] == roles
    assert models[len(roles) :] == [
        "up", "up_plain", "up_slow", "anth", "wrongkey", "down", "m_echo", "m_crash",
        "m_rate", "m_parse", "c_echo", "c_missing",
    ]  # fmt: skip
    assert all(m.owned_by == "llm-mux" and m.object == "model" for m in oai.models.list())


def test_role_wins_over_a_backend_of_the_same_name(oai: openai.OpenAI) -> None:
    answer = ask(oai, "m_ok", "same name")
    assert answer.choices[0].message.content == "same name"  # the role's m_echo


def test_fallback_role_answers_once_naming_the_backend(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="fb", messages=[{"role": "user", "content": "hi"}]
    )
    answer = raw.parse()
    assert raw.headers["x-llm-mux-backend"] == "m_ok"
    assert [c.message.content for c in answer.choices] == ["mock ok"]
    assert answer.model == "fb" and answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.choices[0].finish_reason == "stop"


def test_request_id_is_echoed(served: Served) -> None:
    response = httpx.post(
        served.url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}", "x-request-id": "trace-42"},
        json={"model": "m_echo", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.headers["x-request-id"] == "trace-42"


def test_parallel_role_is_one_choice_per_backend(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model="panel", messages=[{"role": "user", "content": "both"}]
    )
    answer = raw.parse()
    assert raw.headers["x-llm-mux-backend"] == "m_ok,m_echo"
    assert [(c.index, c.message.content) for c in answer.choices] == [(0, "mock ok"), (1, "both")]
    assert [c.model_extra["backend"] for c in answer.choices] == ["m_ok", "m_echo"]  # type: ignore[index]


def test_parallel_role_over_messages_is_one_block_per_backend(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(
        model="panel", max_tokens=50, messages=[{"role": "user", "content": "blocks"}]
    )
    assert [b.text for b in message.content] == ["mock ok", "blocks"]  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.role == "assistant"
    assert message.id.startswith("msg_")


def test_usage_comes_from_the_backend(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    answer = ask(oai, "up_plain", "four words right here")
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (4, 6)
    assert answer.usage.total_tokens == 10
    message = ant.messages.create(
        model="up_plain", max_tokens=20, messages=[{"role": "user", "content": "two words"}]
    )
    assert (message.usage.input_tokens, message.usage.output_tokens) == (2, 4)


# -- one conversation model -------------------------------------------------------------------


def test_conversation_travels_natively_to_http_backends(
    oai: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    before = len(upstream.requests)
    oai.chat.completions.create(
        model="up_plain",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": t} for t in ("sec", "ond")]},
        ],
        max_tokens=7,
        temperature=0.5,
        stop=["END"],
    )  # fmt: skip
    body = upstream.requests[before].body
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"},
    ]
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (7, 0.5, ["END"])


def test_anthropic_system_goes_to_the_providers_system_field(
    ant: anthropic.Anthropic, upstream: FakeLLMServer
) -> None:
    before = len(upstream.requests)
    ant.messages.create(
        model="anth",
        system=[{"type": "text", "text": "sys text"}],
        max_tokens=9,
        stop_sequences=["S"],
        messages=[{"role": "user", "content": "q"}],
    )
    body = upstream.requests[before].body
    assert body["system"] == "sys text"
    assert body["messages"] == [{"role": "user", "content": "q"}]
    assert (body["max_tokens"], body["stop_sequences"]) == (9, ["S"])


def test_cli_backend_gets_one_user_message_verbatim(oai: openai.OpenAI) -> None:
    text = "line one\n  'quoted' $(not run)"
    assert ask(oai, "c_echo", text).choices[0].message.content == text


def test_cli_backend_gets_a_transcript_otherwise(oai: openai.OpenAI) -> None:
    answer = oai.chat.completions.create(
        model="c_echo",
        messages=[
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": "{{ not a template }}"},
        ],
    )
    expected = "System: S\n\nUser: U1\n\nAssistant: A1\n\nUser: {{ not a template }}"
    assert answer.choices[0].message.content == expected


# -- streaming --------------------------------------------------------------------------------


def test_openai_stream_forwards_each_upstream_token(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="up",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [
        c.choices[0].delta.content for c in chunks[1:] if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["up-model ", "answers: ", "stream ", "me ", "please"]  # fmt: skip
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_a_long_stream_arrives_whole_and_in_order(
    oai: openai.OpenAI, ant: anthropic.Anthropic, upstream: FakeLLMServer
) -> None:
    """Events ready at once leave together: none is lost, doubled or reordered."""
    text = " ".join(f"w{i}" for i in range(400))
    upstream.script(Reply(text=text), model="up-model")
    upstream.script(Reply(text=text), model="anth-model")
    messages = [{"role": "user", "content": "long"}]
    stream = oai.chat.completions.create(model="up", messages=messages, stream=True)  # type: ignore[arg-type]
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert pieces[1:-1] == [f"w{i} " for i in range(399)] + ["w399"]
    with ant.messages.stream(model="anth", max_tokens=9, messages=messages) as events:  # type: ignore[arg-type]
        assert "".join(events.text_stream) == text


def test_stream_delta_arrives_before_the_upstream_finishes(
    served: Served, upstream: FakeLLMServer
) -> None:
    import threading

    gate = threading.Event()
    upstream.script(Reply(text="early and late", gate=gate), model="up-model")
    body = {"model": "up", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        with httpx.stream(
            "POST", served.url + "/v1/chat/completions", json=body, headers=headers, timeout=20
        ) as response:
            assert response.headers["x-llm-mux-backend"] == "up"
            lines = response.iter_lines()
            seen = []
            for line in lines:
                if line.startswith("data: ") and '"early ' in line:
                    break
                seen.append(line)
            gate.set()  # only now does the upstream send the rest
            rest = "\n".join(lines)
    finally:
        gate.set()
    assert '"and "' in rest and "[DONE]" in rest


def test_anthropic_stream_events(ant: anthropic.Anthropic) -> None:
    with ant.messages.stream(
        model="anth", max_tokens=20, messages=[{"role": "user", "content": "two words"}]
    ) as stream:
        kinds = []
        texts = []
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta":
                texts.append(event.delta.text)  # type: ignore[union-attr]
        final = stream.get_final_message()
    assert texts == ["anth-model ", "answers: ", "two ", "words"]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_start" in kinds and "message_delta" in kinds
    assert final.content[0].text == "anth-model answers: two words"  # type: ignore[union-attr]


def test_parallel_stream_keeps_each_backend_on_its_index(
    oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    texts: dict[int, str] = {}
    for chunk in oai.chat.completions.create(
        model="spanel", messages=[{"role": "user", "content": "p"}], stream=True
    ):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {0: "up-model answers: p", 1: "anth-model answers: p"}
    with ant.messages.stream(
        model="spanel", max_tokens=20, messages=[{"role": "user", "content": "q"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.text for b in final.content] == ["up-model answers: q", "anth-model answers: q"]  # type: ignore[union-attr]


def test_non_streaming_backend_streams_as_one_delta(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="fb", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert pieces == ["mock ok"]


def test_fallback_never_switches_after_the_first_byte(
    oai: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(Reply(text="cut short here", cut_early=True), model="up-model")
    before = upstream.count(model="plain-model")
    stream = oai.chat.completions.create(
        model="sfb", messages=[{"role": "user", "content": "x"}], stream=True
    )
    pieces = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["cut "]
    assert "up" in str(caught.value.message)
    assert upstream.count(model="plain-model") == before


def test_fallback_moves_on_before_the_first_byte(
    oai: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(error(500, "upstream broke"), model="up-model")
    raw = oai.chat.completions.with_raw_response.create(
        model="sfb", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert raw.headers["x-llm-mux-backend"] == "up_plain"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "plain-model answers: x"


def test_stream_error_before_the_first_byte_is_a_status(ant: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.RateLimitError) as caught,
        ant.messages.stream(
            model="fb_fail", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert caught.value.response.headers["retry-after"] == "3"


# -- errors -----------------------------------------------------------------------------------


def post(served: Served, path: str, data: bytes | str, key: str | None = KEY) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["x-api-key"] = key
    return httpx.post(served.url + path, content=data, headers=headers, timeout=30)


ONE_MESSAGE = '"messages": [{"role": "user", "content": "x"}]'


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ('{"messages": [{"role": "user", "content": "x"}]}', "model"),
        ('{"model": "m_ok"}', "messages"),
        ('{"model": "m_ok", "messages": []}', "messages"),
        ('{"model": "m_ok", "messages": [{"role": "tool", "content": "x"}]}', "messages[0].role"),
        ('{"model": "m_ok", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
        (
            '{"model": "m_ok", "tools": [{"type": "function"}], "messages": '
            '[{"role": "user", "content": "x"}]}',
            "tools",
        ),
        (
            '{"model": "m_ok", "tool_choice": "auto", "messages": '
            '[{"role": "user", "content": "x"}]}',
            "tool_choice",
        ),
        (
            '{"model": "m_ok", "messages": [{"role": "user", "content": '
            '[{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}',
            "messages[0].content",
        ),
        (
            '{"model": "m_ok", "messages": [{"role": "user", "content": '
            '[{"type": "input_audio", "input_audio": {}}]}]}',
            "messages[0].content",
        ),
        ('{"model": "m_ok", "max_tokens": -1, ' + ONE_MESSAGE + "}", "max_tokens"),
        ('{"model": "m_ok", "temperature": "hot", ' + ONE_MESSAGE + "}", "temperature"),
        ('{"model": "m_ok", "stream": "yes", ' + ONE_MESSAGE + "}", "stream"),
    ],
)  # fmt: skip
def test_openai_bad_requests_answer_400_naming_the_field(
    served: Served, body: str, param: str | None
) -> None:
    response = post(served, "/v1/chat/completions", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if param is not None:
        assert param.split("[")[0] in error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        "nope",
        '{"model": "m_ok", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}',
        '{"model": "m_ok", "max_tokens": 5, "messages": [{"role": "user", "content": '
        '[{"type": "image", "source": {}}]}]}',
        '{"model": "m_ok", "max_tokens": 5, "tools": [], ' + ONE_MESSAGE + "}",
    ],
)  # fmt: skip
def test_anthropic_bad_requests_answer_400_in_its_shape(served: Served, body: str) -> None:
    response = post(served, "/v1/messages", body)
    assert response.status_code == 400, response.text
    document = response.json()
    assert document["type"] == "error"
    assert document["error"]["type"] == "invalid_request_error"


def test_sdk_bad_request_is_the_sdks_exception(
    oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(
            model="m_ok",
            messages=[{"role": "user", "content": "x"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.create(
            model="m_ok",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            tools=[{"name": "f", "input_schema": {"type": "object"}}],
        )


@pytest.mark.parametrize("key", [None, "wrong-key", KEY + "x", ""])
def test_missing_or_wrong_key_is_401(served: Served, key: str | None) -> None:
    body = '{"model": "m_ok", "messages": [{"role": "user", "content": "x"}]}'
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/models", "/metrics", "/nowhere"):
        response = post(served, path, body, key=key)
        assert response.status_code == 401, (path, response.text)
    assert post(served, "/v1/messages", body, key=key).json()["type"] == "error"


def test_sdks_see_401_as_authentication_error(served: Served) -> None:
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="bad", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        ask(client, "m_ok")
    other = anthropic.Anthropic(base_url=served.url, api_key="bad", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        other.messages.create(
            model="m_ok", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_bearer_key_works_too(served: Served) -> None:
    response = httpx.get(served.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200


def test_unknown_and_disabled_models_are_404(oai: openai.OpenAI, ant: anthropic.Anthropic) -> None:
    for model in ("nope", "m_off"):
        with pytest.raises(openai.NotFoundError) as caught:
            ask(oai, model)
        assert model in caught.value.message
    with pytest.raises(anthropic.NotFoundError):
        ant.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_rate_limited_is_429_with_retry_after_rounded_up(
    oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        ask(oai, "m_rate")
    assert caught.value.response.headers["retry-after"] == "3"
    assert "m_rate" in caught.value.message and "RateLimited" in caught.value.message
    with pytest.raises(anthropic.RateLimitError):
        ant.messages.create(
            model="m_rate", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


def test_rate_limited_upstream_without_a_delay_has_no_retry_after(
    oai: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(rate_limited(), model="plain-model")
    with pytest.raises(openai.RateLimitError) as caught:
        ask(oai, "up_plain")
    assert "retry-after" not in caught.value.response.headers


def test_backend_bad_request_is_400(oai: openai.OpenAI, upstream: FakeLLMServer) -> None:
    upstream.script(error(400, "prompt is longer than the context"), model="plain-model")
    with pytest.raises(openai.BadRequestError) as caught:
        ask(oai, "up_plain")
    assert "context" in caught.value.message and "up_plain" in caught.value.message


def test_backend_refusing_the_servers_key_is_502_never_401(
    oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        ask(oai, "wrongkey")
    assert caught.value.status_code == 502
    assert "Auth" in caught.value.message
    with pytest.raises(anthropic.InternalServerError) as other:
        ant.messages.create(
            model="wrongkey", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert other.value.status_code == 502


@pytest.mark.parametrize(
    ("model", "reply", "status", "name"),
    [
        ("up_plain", error(503, "overloaded"), 502, "ServerError"),
        ("up_plain", html(), 502, "Parse"),
        ("up_plain", drop(), 502, "ServerError"),
        ("m_crash", None, 502, "Failed"),
        ("m_parse", None, 502, "Parse"),
        ("down", None, 503, "Unavailable"),
        ("c_missing", None, 503, "Unavailable"),
        ("up_slow", hang(), 504, "Timeout"),
    ],
)
def test_backend_failures_map_to_statuses(
    oai: openai.OpenAI,
    upstream: FakeLLMServer,
    model: str,
    reply: Reply | None,
    status: int,
    name: str,
) -> None:
    if reply is not None:
        upstream.script(reply, model={"up_plain": "plain-model", "up_slow": "slow-model"}[model])
    with pytest.raises(openai.APIStatusError) as caught:
        ask(oai, model)
    assert caught.value.status_code == status
    assert name in caught.value.message and model in caught.value.message
    assert caught.value.body["type"] in ("api_error", "overloaded_error", "timeout_error")  # type: ignore[index]


def test_failed_fallback_answers_the_last_failure_naming_each(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        ask(oai, "fb_fail")
    assert "m_crash" in caught.value.message and "m_rate" in caught.value.message


def test_wrong_method_and_unknown_path(served: Served) -> None:
    headers = {"x-api-key": KEY}
    assert httpx.get(served.url + "/v1/chat/completions", headers=headers).status_code == 405
    assert httpx.get(served.url + "/v2/other", headers=headers).status_code == 404


def test_no_secret_and_no_traceback_in_answers_or_log(
    served: Served, oai: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(error(500, f"echoing {UPSTREAM_KEY}"), model="plain-model")
    for model in ("wrongkey", "up_plain", "down"):
        with pytest.raises(openai.APIStatusError) as caught:
            ask(oai, model)
        assert UPSTREAM_KEY not in caught.value.response.text
        assert "sk-wrong-key-55555" not in caught.value.response.text
    log = served.stderr()
    for secret in (UPSTREAM_KEY, KEY, "sk-wrong-key-55555"):
        assert secret not in log
    assert "Traceback" not in log


def test_metrics(served: Served, oai: openai.OpenAI) -> None:
    ask(oai, "fb")
    text = httpx.get(served.url + "/metrics", headers={"x-api-key": KEY}).text
    assert 'llm_mux_requests_total{model="fb",status="200"}' in text
    assert 'llm_mux_request_duration_seconds_bucket{le="+Inf",model="fb"}' in text
    assert 'llm_mux_backend_calls_total{backend="m_crash",outcome="Failed"}' in text
    assert 'llm_mux_backend_calls_total{backend="m_ok",outcome="ok"}' in text
    assert "llm_mux_requests_in_flight 0.0" in text


def test_access_log_has_one_line_per_request(served: Served, oai: openai.OpenAI) -> None:
    ask(oai, "panel", "logged")
    # the line is written once the answer has gone out: the client may read it first
    deadline = time.monotonic() + within(5)
    while not (lines := [ln for ln in served.stderr().splitlines() if "model=panel" in ln]):
        assert time.monotonic() < deadline, served.stderr()
        time.sleep(0.02)
    assert "POST /v1/chat/completions" in lines[-1]
    assert "status=200" in lines[-1] and "backend=m_ok,m_echo" in lines[-1]
    assert lines[-1].endswith(" ms")


def test_serve_help_imports_no_server_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom llm_mux.cli.main import entry\nsys.argv=['llm-mux','serve','--help']\n"
        "try:\n    entry()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('uvicorn','prometheus_client','httpx2','asyncio') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_hostile_bodies_get_400_not_500(served: Served) -> None:
    for body in ("[" * 100_000, b"\xff\xfe{}".decode("latin-1"), '{"model": 5}', "null"):
        response = post(served, "/v1/chat/completions", body)
        assert response.status_code == 400, (body[:20], response.text)


def test_lone_surrogates_round_trip_as_valid_json(served: Served) -> None:
    body = '{"model": "m_echo", "messages": [{"role": "user", "content": "a\\ud800b"}]}'
    response = post(served, "/v1/chat/completions", body)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] in ("a\ud800b", "a\ufffdb")
    stream = post(
        served, "/v1/chat/completions", body.replace('"m_echo",', '"m_echo", "stream": true,')
    )
    assert stream.status_code == 200 and "[DONE]" in stream.text


def test_every_answer_names_the_request_and_backend_headers(served: Served) -> None:
    for response in (
        httpx.get(served.url + "/health"),
        post(served, "/v1/chat/completions", '{"model": "nope"}'),
        post(served, "/v1/chat/completions", BODY_ECHO),
    ):
        assert response.headers["x-request-id"]
        assert "x-llm-mux-backend" in response.headers
    assert post(served, "/v1/chat/completions", BODY_ECHO).headers["x-llm-mux-backend"] == "m_echo"


BODY_ECHO = '{"model": "m_echo", "messages": [{"role": "user", "content": "x"}]}'


def test_an_empty_stream_fails_over_before_the_first_byte(
    oai: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    upstream.script(Reply(text="  "), model="up-model")
    raw = oai.chat.completions.with_raw_response.create(
        model="sfb", messages=[{"role": "user", "content": "x"}], stream=True
    )
    assert raw.headers["x-llm-mux-backend"] == "up_plain"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "plain-model answers: x"
