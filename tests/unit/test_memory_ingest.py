"""Store input: finding the JSON in an answer, and validating every item before storing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_mux.errors import StoreError
from llm_mux.memory import EntityItem, FactItem, RelationshipItem, parse_store_input

FACT = {"project": "api", "fact": "Uses PostgreSQL", "source": "config.yml", "confidence": 0.9}
DOC = {"facts": [FACT]}


def problems_of(text: str) -> str:
    with pytest.raises(StoreError) as info:
        parse_store_input(text)
    return info.value.message


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(DOC),
        f"  \n{json.dumps(DOC, indent=2)}\n",
        f"Here you go:\n```json\n{json.dumps(DOC)}\n```\nDone.",
        f"Here you go:\n```JSON\n{json.dumps(DOC)}\n```",
        f'The answer {json.dumps(DOC)} and some trailing prose with {{"x": 1}}.',
        f'Noise {{"note": "not it"}} then {json.dumps(DOC)}',
        f"Braces in prose {{ like this }} first, then {json.dumps(DOC)}",
    ],
)
def test_finds_the_document_wherever_it_sits(text: str) -> None:
    payload = parse_store_input(text)
    assert payload.facts == (FactItem("api", "Uses PostgreSQL", "config.yml", 0.9),)


def test_fenced_block_wins_over_later_objects() -> None:
    other = {"facts": [{**FACT, "fact": "other"}]}
    text = f"```json\n{json.dumps(DOC)}\n```\n{json.dumps(other)}"
    assert parse_store_input(text).facts[0].fact == "Uses PostgreSQL"


def test_braces_inside_strings_do_not_confuse_the_scan() -> None:
    fact = {**FACT, "fact": "Template uses {{ name }} and } braces {"}
    text = f"prose {{ not json {json.dumps({'facts': [fact]})} more }}"
    assert parse_store_input(text).facts[0].fact == fact["fact"]


def test_all_three_kinds_with_defaults() -> None:
    document = {
        "facts": [{"project": "api", "fact": "f", "source": "s"}],
        "relationships": [{"from": "web", "to": "api", "type": "calls_api", "evidence": "e"}],
        "entities": [
            {"entity_type": "table", "entity_name": "users", "extra": "ignored"},
            {
                "entity_type": "service",
                "entity_name": "auth",
                "project": "api",
                "properties": {"port": 8080, "tags": ["a"]},
                "source": "docker-compose.yml",
                "source_type": "file",
                "confidence": 0.5,
            },
        ],
    }
    payload = parse_store_input(json.dumps(document))
    assert payload.facts == (FactItem("api", "f", "s", 1.0, "", ""),)
    assert payload.relationships == (RelationshipItem("web", "api", "calls_api", "e"),)
    assert payload.entities[0] == EntityItem("table", "users")
    assert payload.entities[1].properties == {"port": 8080, "tags": ["a"]}
    assert payload.entities[1].confidence == 0.5
    assert len(payload) == 4


def test_every_problem_is_named_by_list_index_and_field() -> None:
    document = {
        "facts": [
            FACT,
            {"project": "api", "fact": "x"},
            {"project": "", "fact": 3, "source": "s", "confidence": "0.3"},
            "not an object",
            {**FACT, "confidence": 1.5},
        ],
        "relationships": [{"from": "a", "type": "t"}],
        "entities": [{"entity_name": "n", "properties": [1]}],
    }
    message = problems_of(json.dumps(document))
    for expected in (
        "facts[1]: missing field 'source'",
        "facts[2]: field 'project' must not be empty",
        "facts[2]: field 'fact' must be a string",
        "facts[2]: field 'confidence' must be a number from 0 to 1",
        "facts[3]: must be an object",
        "facts[4]: field 'confidence' must be a number from 0 to 1, got 1.5",
        "relationships[0]: missing field 'to'",
        "entities[0]: missing field 'entity_type'",
        "entities[0]: field 'properties' must be an object",
    ):
        assert expected in message
    assert "facts[0]" not in message
    assert "nothing stored" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("no json here at all", "no JSON object"),
        ("[1, 2, 3]", "no JSON object"),
        ('{"summary": "done"}', "none of 'facts', 'relationships', 'entities'"),
        ('{"facts": {"project": "a"}}', "'facts' must be a list, got an object"),
    ],
)
def test_clear_errors_for_unusable_input(text: str, expected: str) -> None:
    assert expected in problems_of(text)


def test_confidence_rejects_booleans_and_non_finite() -> None:
    assert "confidence" in problems_of(json.dumps({"facts": [{**FACT, "confidence": True}]}))
    assert "confidence" in problems_of(
        '{"facts": [{"project": "a", "fact": "b", "source": "c", "confidence": NaN}]}'
    )


def test_empty_lists_are_valid_and_store_nothing() -> None:
    assert len(parse_store_input('{"facts": [], "relationships": null}')) == 0


def test_key_fields_are_trimmed_and_lone_surrogates_replaced() -> None:
    text = '{"facts": [{"project": " api ", "fact": "bad \\ud800 char", "source": "s"}]}'
    fact = parse_store_input(text).facts[0]
    assert fact.project == "api"
    fact.fact.encode("utf-8")  # storable
    assert "\ufffd" in fact.fact


def test_many_problems_are_summarised() -> None:
    document = {"facts": [{"project": "p"}] * 300}
    message = problems_of(json.dumps(document))
    assert "(600 problems)" in message
    assert "more problems" in message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    assert "facts" in problems_of(deep)
    properties = '{"k":' * 900 + "1" + "}" * 900
    text = '{"entities": [{"entity_type": "t", "entity_name": "n", "properties": %s}]}'
    try:
        parse_store_input(text % properties)
    except StoreError as exc:
        assert "entities[0]" in exc.message or "JSON" in exc.message


@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    try:
        parse_store_input(text)
    except StoreError:
        pass


def test_the_report_lists_each_problem_in_field_order() -> None:
    document = {
        "facts": [{"fact": 3, "source": " ", "confidence": "high", "category": ["x"]}],
        "relationships": [{"from": None, "to": "b", "type": "", "evidence": 1}],
        "entities": [{"entity_type": "t", "entity_name": "n", "properties": "p", "x": 1}],
    }
    assert problems_of(json.dumps(document)) == "\n".join(
        [
            "invalid store input, nothing stored (9 problems):",
            "  facts[0]: missing field 'project'",
            "  facts[0]: field 'fact' must be a string, got a number",
            "  facts[0]: field 'source' must not be empty",
            "  facts[0]: field 'confidence' must be a number from 0 to 1, got \"high\"",
            "  facts[0]: field 'category' must be a string, got a list",
            "  relationships[0]: missing field 'from'",
            "  relationships[0]: field 'type' must not be empty",
            "  relationships[0]: field 'evidence' must be a string, got a number",
            "  entities[0]: field 'properties' must be an object, got a string",
        ]
    )


def other_fact(source: str) -> dict[str, object]:
    return {"facts": [{**FACT, "source": source}]}


@pytest.mark.parametrize(
    "joiner",
    [
        lambda a, b: f"{json.dumps(a)}\n\n{json.dumps(b)}",  # a parallel step's output
        lambda a, b: f"one:\n```json\n{json.dumps(a)}\n```\n\ntwo:\n```json\n{json.dumps(b)}\n```",
        lambda a, b: f"A said {json.dumps(a, indent=2)}\n\nB said {json.dumps(b)} and no more",
    ],
)
def test_several_documents_make_one_payload(joiner) -> None:  # type: ignore[no-untyped-def]
    payload = parse_store_input(joiner(other_fact("a.yml"), other_fact("b.yml")))
    assert [f.source for f in payload.facts] == ["a.yml", "b.yml"]


def test_one_bad_document_of_several_stores_nothing_and_is_named() -> None:
    bad = {"facts": [{"project": "api", "fact": "x"}]}
    message = problems_of(f"{json.dumps(DOC)}\n\n{json.dumps(bad)}")
    assert "document 2 of 2: invalid store input" in message
    assert "missing field 'source'" in message and "document 1" not in message


def test_nested_objects_are_not_documents_of_their_own() -> None:
    nested = {"facts": [{**FACT, "properties": {"facts": []}}]}
    assert len(parse_store_input(f"Answer: {json.dumps(nested)}").facts) == 1
