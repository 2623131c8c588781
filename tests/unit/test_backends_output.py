"""Reading CLI output: rate-limit and auth wording, reset times, JSON output modes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from llm_mux.backends.cli_output import json_mode, parse_output
from llm_mux.backends.patterns import AUTH, RATE_LIMIT, matching_line, reset_after

NOW = datetime(2026, 1, 1, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Error: rate limit exceeded",
        "rate_limit_error: slow down",
        "HTTP 429",
        "Too Many Requests",
        "You exceeded your current quota",
        "Claude AI usage limit reached|1767312000",
        "5-hour limit reached · resets 1am",
        "You've hit your usage limit. Try again in 3 days.",
        "RESOURCE_EXHAUSTED",
    ],
)
def test_rate_limit_wording(text: str) -> None:
    assert RATE_LIMIT.search(text)


@pytest.mark.parametrize("text", ["all good", "HTTP 4290 bytes", "limits of the approach"])
def test_not_rate_limit_wording(text: str) -> None:
    assert not RATE_LIMIT.search(text)


@pytest.mark.parametrize(
    "text", ["Invalid API key", "invalid x-api-key", "API key not valid", "Not logged in"]
)
def test_auth_wording(text: str) -> None:
    assert AUTH.search(text)


def test_matching_line_quotes_the_line_that_matched() -> None:
    text = "starting\nError: 429 Too Many Requests\nbye"
    assert matching_line(RATE_LIMIT, text) == "Error: 429 Too Many Requests"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("limit reached · resets 1am", 2.5 * 3600),
        ("resets at 11pm", 1800),
        ("reset at 13:00", 14.5 * 3600),
        ("resets 10:30pm", 24 * 3600),  # exactly now: the next one
        ("resets 1am (Asia/Tokyo)", 17.5 * 3600),  # 07:30 in Tokyo now
        ("Please try again in 20s.", 20),
        ("Please try again in 6ms", 0.006),
        ("retry after 30 seconds", 30),
        ("try again in 2 days 4 hours 5 minutes", 2 * 86400 + 4 * 3600 + 300),
        ("resets in 2h30m", 9000),
        ("Claude AI usage limit reached|1767312000", 5400),
        ("rate limit exceeded", None),
        ("resets 5", None),
        ("resets 13pm", None),
    ],
)
def test_reset_after(text: str, seconds: float | None) -> None:
    assert reset_after(text, NOW) == seconds


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p"], False),
        (["-p", "--output-format", "json"], True),
        (["-p", "--output-format=stream-json"], True),
        (["-p", "--output-format", "text"], False),
        (["exec", "--json"], True),
        (["-o", "json"], True),
        (["-o", "text"], False),
        (["--output-format"], False),
    ],
)
def test_json_mode_from_args(args: list[str], expected: bool) -> None:
    assert json_mode(args) is expected


CLAUDE = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "result": "  The answer.\n",
    "total_cost_usd": 0.25,
    "usage": {
        "input_tokens": 3,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 100,
        "output_tokens": 7,
    },
}


def test_claude_json_result() -> None:
    parsed = parse_output(json.dumps(CLAUDE), json_mode=True)
    assert parsed.text == "The answer."
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (113, 7)
    assert parsed.usage.cost_usd == 0.25
    assert parsed.error is None


def test_claude_json_error_is_reported() -> None:
    doc = {**CLAUDE, "is_error": True, "subtype": "error", "result": "usage limit reached"}
    assert parse_output(json.dumps(doc), json_mode=True).error == "usage limit reached"


def test_claude_stream_json_takes_the_result_event() -> None:
    lines = [{"type": "system", "subtype": "init"}, {"type": "assistant"}, CLAUDE]
    parsed = parse_output("\n".join(json.dumps(x) for x in lines), json_mode=True)
    assert parsed.text == "The answer."


def test_codex_jsonl_takes_the_final_agent_message() -> None:
    events = [
        {"type": "thread.started", "thread_id": "t"},
        {"type": "item.completed", "item": {"type": "reasoning", "text": "hmm"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "draft"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "final"}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 2}},
    ]
    text = "warning: noise\n" + "\n".join(json.dumps(e) for e in events)
    parsed = parse_output(text, json_mode=True)
    assert parsed.text == "final"
    assert parsed.usage is not None and parsed.usage.total_tokens == 7


def test_codex_old_format_and_failed_turn() -> None:
    old = [
        {"msg": {"type": "agent_message", "message": "hello"}},
        {"msg": {"type": "token_count", "input_tokens": 1, "output_tokens": 1}},
    ]
    assert parse_output("\n".join(json.dumps(e) for e in old), json_mode=True).text == "hello"
    failed = {"type": "turn.failed", "error": {"message": "quota exceeded"}}
    assert parse_output(json.dumps(failed), json_mode=True).error == "quota exceeded"


def test_gemini_json_response_and_stats() -> None:
    doc = {
        "response": "gemini text",
        "stats": {"models": {"a": {"tokens": {"prompt": 4, "candidates": 6}}, "b": {}}},
    }
    parsed = parse_output(json.dumps(doc), json_mode=True)
    assert parsed.text == "gemini text"
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (4, 6)
    error = {"error": {"type": "ApiError", "message": "Quota exceeded", "code": 429}}
    assert parse_output(json.dumps(error), json_mode=True).error == "Quota exceeded"


@pytest.mark.parametrize(
    "text", ["plain words\n", '{"unrelated": 1}', "[1, 2]", "{not json", '"a string"']
)
def test_anything_else_is_raw_text(text: str) -> None:
    assert parse_output(text, json_mode=True).text == text.rstrip()


def test_without_json_mode_json_stays_text() -> None:
    text = json.dumps(CLAUDE)
    assert parse_output(text, json_mode=False).text == text
