"""The two chat endpoints: a request read, one role or backend call, the answer rendered.

Without ``stream`` the whole answer is one document. With it, the headers go out once the
role's backends have started answering (so an error before that is still a status code,
and ``x-llm-mux-backend`` names who answers); a failure after it is an ``error`` event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llm_mux.errors import BackendError
from llm_mux.roles import RoleFailed, RoleResult
from llm_mux.serve import wire
from llm_mux.serve.errors import ApiError, from_backend, from_role
from llm_mux.serve.render import (
    Answer,
    AnthropicStream,
    Choice,
    OpenAIStream,
    anthropic_document,
    openai_document,
)

if TYPE_CHECKING:
    from llm_mux.serve.app import Exchange


async def answer(exchange: Exchange, raw: bytes) -> None:
    """Answer one ``/v1/chat/completions`` or ``/v1/messages`` request."""
    body = wire.decode(raw)
    parse = wire.anthropic_call if exchange.shape == "anthropic" else wire.openai_call
    if isinstance(body.get("model"), str):
        exchange.model = body["model"]
    call = parse(body)
    name, is_role = exchange.app.target(call.model)
    if call.stream:
        await _stream(exchange, call, name, is_role)
    else:
        await _whole(exchange, call, name, is_role)


async def _whole(exchange: Exchange, call: wire.Call, name: str, is_role: bool) -> None:
    mux = exchange.app.mux
    prompt = call.request.prompt
    try:
        if is_role:
            result = await mux.call_role(name, prompt, request=call.request)
        else:
            result = await mux.call_backend(name, prompt, request=call.request)
    except RoleFailed as exc:
        _count(exchange, exc.result)
        raise from_role(exc) from None
    _count(exchange, result)
    exchange.backends = result.backends
    answer = Answer(call.model, [], parallel=result.execution == "parallel")
    for outcome in result.successes:
        assert outcome.response is not None
        answer.choices.append(Choice(outcome.backend, outcome.response.text))
        answer.add(outcome.response.usage)
    render = anthropic_document if exchange.shape == "anthropic" else openai_document
    await exchange.json(200, render(answer))


def _count(exchange: Exchange, result: RoleResult) -> None:
    calls = exchange.app.metrics.backend_calls
    for outcome in result.outcomes:
        label = "ok" if outcome.error is None else outcome.error.error_class
        calls.labels(outcome.backend, label).inc()


async def _stream(exchange: Exchange, call: wire.Call, name: str, is_role: bool) -> None:
    from llm_mux.streaming import open_role

    calls = exchange.app.metrics.backend_calls
    try:
        stream = await open_role(exchange.app.mux, name, call.request, is_role=is_role)
    except RoleFailed as exc:
        _count(exchange, exc.result)
        raise from_role(exc) from None
    for failure in stream.failures:
        calls.labels(failure.backend, failure.error.error_class if failure.error else "ok").inc()
    try:
        exchange.backends = stream.backends
        parallel = stream.execution == "parallel"
        events: OpenAIStream | AnthropicStream
        if exchange.shape == "anthropic":
            events = AnthropicStream(call.model, stream.backends)
        else:
            events = OpenAIStream(call.model, stream.backends, parallel, call.include_usage)
        await exchange.start(200, "text/event-stream")
        await exchange.body(events.start())
        usage = Answer(call.model, [])
        try:
            async for index, delta in stream.events():
                if delta.text:
                    await exchange.body(events.delta(index, delta.text))
                usage.add(delta.usage)
        except BackendError as exc:
            calls.labels(exc.backend or name, exc.error_class).inc()
            error = from_backend(exc)
            await exchange.body(events.error(error), more=False)
            exchange.status = error.status
            return
        for backend in stream.backends:
            calls.labels(backend, "ok").inc()
        await exchange.body(events.end(usage.input_tokens, usage.output_tokens), more=False)
    finally:
        await stream.aclose()


__all__ = ["ApiError", "answer"]
