"""One finder for JSON in answers: the same rules for output_schema, store and apply; linear."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_mux.answer_json import MAX_DEPTH, NO_JSON, Scanner, embedded, extract, nested
from llm_mux.apply.edits import Replace, parse_edits
from llm_mux.errors import StoreError
from llm_mux.memory.ingest import extract_document
from llm_mux.workflow.steps.query import extract_json
from tests.conftest import slack

SIZE = 200 * 1024

HOSTILE = {
    "x-repeated": '{"x" ',
    "open-brackets": "[",
    "open-objects": '{"a":',
    "open-quotes": '{"',
    "array-of-open-objects": "[{",
    "unclosed-values": '{"a": [1, {"b": 2}, "c"',
    "escapes": '["\\',
    "numbers": "[1,1e5,-0.5,",
    "prose": "{ not json } ",
}


def hostile(unit: str) -> str:
    return unit * (SIZE // len(unit))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_scanning_hostile_text_reads_each_character_a_bounded_number_of_times(name: str) -> None:
    text = hostile(HOSTILE[name]) + ' {"facts": []} '
    scanner = Scanner(text)
    found = list(embedded(text, scanner))
    assert scanner.work <= 3 * len(text), (scanner.work, len(text))
    assert {"facts": []} in found or name in ("escapes", "open-quotes")


@pytest.mark.parametrize("name", ["x-repeated", "open-brackets", "open-objects", "prose"])
def test_every_caller_is_fast_on_hostile_text(name: str) -> None:
    text = hostile(HOSTILE[name])
    for call in (_query, _store, _apply):
        started = time.perf_counter()
        call(text)
        took = time.perf_counter() - started
        # about 0.5 s on an idle machine; the quadratic finder took 3.7 s
        assert took < 3.0 * slack(), (call.__name__, took)


def _query(text: str) -> None:
    with pytest.raises(ValueError):
        extract_json(text)


def _store(text: str) -> None:
    with pytest.raises(StoreError):
        extract_document(text)


def _apply(text: str) -> None:
    with pytest.raises(Exception, match="edits"):
        parse_edits(text)


EDIT = {"path": "a.txt", "old": "1", "new": "2"}
STORE = {"facts": [{"project": "p", "fact": "f", "source": "s"}]}


@pytest.mark.parametrize(
    "template",
    [
        "{}",
        "Here:\n```json\n{}\n```\nbye",
        "Here:\n```JSON\n{}\n```",
        "Here:\n```\n{}\n```",
        "Sure! {} and then some prose",
        "noise { not json } then {}",
        "before [1, 2 broken then {} after",
        'wrapped {"result": {}} in prose',
        "one raw\nnewline: {}",
    ],
)
def test_the_three_callers_find_the_same_json(template: str) -> None:
    def fill(value: dict[str, Any]) -> str:
        body = json.dumps(value)
        if "raw\nnewline" in template:
            body = body.replace('"f"', '"line\nbreak"').replace('"2"', '"line\nbreak"')
        return template.replace("{}", body, 1)

    store_text, edit_text = fill(STORE), fill(EDIT)
    document = extract_document(store_text)
    assert set(document) == {"facts"}
    (edit,) = parse_edits(edit_text)
    assert isinstance(edit, Replace) and edit.path == "a.txt"
    found = extract_json(store_text)
    assert found == document or document in list(nested(found))


def test_fenced_json_wins_over_embedded_for_all() -> None:
    other = {"facts": [{"project": "q", "fact": "g", "source": "t"}]}
    text = f"{json.dumps(other)} first, but\n```json\n{json.dumps(STORE)}\n```"
    assert extract_json(text) == STORE
    assert extract_document(text) == STORE


def test_nesting_deeper_than_the_limit_is_cut_without_a_crash() -> None:
    depth = MAX_DEPTH + 10
    value = extract_json(f"prose {'[' * depth}{']' * depth} then [1]")
    levels = 0
    while isinstance(value, list) and value:
        value, levels = value[0], levels + 1
    assert value == [] and levels < MAX_DEPTH  # an inner part within the limit


def test_deep_unclosed_text_does_not_raise() -> None:
    with pytest.raises(ValueError):
        extract_json("[" * 100_000)


def _first_by_brute_force(text: str) -> Any:
    decoder = json.JSONDecoder(strict=False)
    for start, char in enumerate(text):
        if char in "[{":
            try:
                return decoder.raw_decode(text, start)[0]
            except ValueError:
                continue
    return NO_JSON


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='{}[]":,1 a\\\n-e.0tn', max_size=60))
def test_first_embedded_value_matches_trying_the_decoder_at_every_bracket(text: str) -> None:
    found = next(embedded(text), NO_JSON)
    assert found == _first_by_brute_force(text)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=20,
    ).filter(lambda v: isinstance(v, list | dict)),
    st.text(alphabet="abc .!?\n", max_size=20),
)
def test_any_json_container_in_prose_is_found(value: Any, prose: str) -> None:
    text = f"{prose} {json.dumps(value)} {prose}"
    assert extract(text) == value


def test_json_after_much_brace_prose_is_found_by_every_caller() -> None:
    text = "{ not json } [ nor this ] " * 10_000 + json.dumps({**STORE, **EDIT})
    assert extract_json(text) == {**STORE, **EDIT}
    assert extract_document(text) == {**STORE, **EDIT}
    assert parse_edits(text) == [Replace("a.txt", "1", "2")]
