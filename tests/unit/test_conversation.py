"""From a conversation to the one prompt CLI and mock backends take (SPEC §9)."""

from __future__ import annotations

from llm_mux.backends.base import Message, Request
from llm_mux.backends.conversation import conversation_request, transcript
from llm_mux.backends.http import request_messages


def test_one_user_message_without_system_text_is_verbatim() -> None:
    assert transcript(None, [Message("user", "  {{ x }}\n")]) == "  {{ x }}\n"


def test_system_text_makes_a_transcript() -> None:
    text = transcript("be brief", [Message("user", "hi")])
    assert text == "System: be brief\n\nUser: hi"


def test_turns_in_order_each_introduced_by_its_role() -> None:
    turns = [Message("user", "a"), Message("assistant", "b"), Message("user", "c")]
    assert transcript(None, turns) == "User: a\n\nAssistant: b\n\nUser: c"


def test_a_lone_assistant_message_is_not_passed_verbatim() -> None:
    assert transcript(None, [Message("assistant", "x")]) == "Assistant: x"


def test_request_carries_turns_settings_and_prompt() -> None:
    request = conversation_request(
        "sys", [Message("user", "q")], max_tokens=5, temperature=0.2, stop=["E"]
    )
    assert request.prompt == "System: sys\n\nUser: q"
    assert request.system == "sys" and request.turns() == (Message("user", "q"),)
    assert (request.max_tokens, request.temperature, request.stop) == (5, 0.2, ("E",))
    assert request_messages(request, "sys") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "q"},
    ]


def test_a_bare_prompt_is_one_user_turn() -> None:
    assert Request("hello").turns() == (Message("user", "hello"),)
    assert request_messages(Request("hello"), None) == [{"role": "user", "content": "hello"}]
