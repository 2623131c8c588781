"""The ``memory`` object of templates, used from a real sandboxed Jinja environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from llm_mux.errors import TemplateError
from llm_mux.memory import MemoryReader, MemoryStore

DOCUMENT = {
    "facts": [
        {"project": "api", "fact": "Uses PostgreSQL", "source": "cfg", "category": "db"},
        {"project": "web", "fact": "React", "source": "package.json", "category": "ui"},
    ],
    "relationships": [{"from": "web", "to": "api", "type": "calls_api"}],
    "entities": [{"entity_type": "table", "entity_name": "users", "properties": {"n": 1}}],
}


@pytest.fixture
def store(tmp_path: Path) -> MemoryStore:
    store = MemoryStore(tmp_path / "m.db")
    store.store_text(json.dumps(DOCUMENT), ecosystem="myapp")
    store.store_text(
        '{"facts": [{"project": "api", "fact": "other eco", "source": "s"}]}', ecosystem="elsewhere"
    )
    return store


def render(source: str, memory: MemoryReader) -> str:
    env = SandboxedEnvironment(undefined=StrictUndefined)
    return env.from_string(source).render(memory=memory)


def test_templates_read_facts_of_their_ecosystem(store: MemoryStore) -> None:
    reader = MemoryReader(store, "myapp")
    text = render(
        "{% for f in memory.facts(project='api') %}{{ f.fact }} ({{ f.source }});{% endfor %}",
        reader,
    )
    assert text == "Uses PostgreSQL (cfg);"
    assert render("{{ memory.facts(category='ui')[0].fact }}", reader) == "React"
    assert render("{{ memory.facts() | length }}", reader) == "2"
    assert render("{{ memory.facts(limit=1) | length }}", reader) == "1"
    assert render("{{ memory.facts(search='postgres') | length }}", reader) == "1"


def test_relationships_and_entities(store: MemoryStore) -> None:
    reader = MemoryReader(store, "myapp")
    text = (
        "{% for r in memory.relationships(project='api') %}{{ r.from_project }}->"
        "{{ r.to_project }}:{{ r.type }}{% endfor %}"
    )
    assert render(text, reader) == "web->api:calls_api"
    assert render("{{ memory.entities()[0].properties.n }}", reader) == "1"


def test_results_are_plain_data() -> None:
    reader = MemoryReader(MemoryStore(Path("/nonexistent/dir/m.db")), None)
    assert reader.facts() == [] and reader.relationships() == [] and reader.entities() == []


def test_the_sandbox_cannot_reach_the_writing_store(store: MemoryStore) -> None:
    reader = MemoryReader(store, "myapp")
    with pytest.raises(SecurityError):
        render("{{ memory._store.store_text('{}', ecosystem='x') }}", reader)
    with pytest.raises(Exception, match="store"):
        render("{{ memory.store }}", reader)


def test_outside_any_ecosystem_reads_default(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "d.db")
    store.store_text('{"facts": [{"project": "p", "fact": "f", "source": "s"}]}', ecosystem=None)
    assert [f["fact"] for f in MemoryReader(store, None).facts()] == ["f"]
    assert MemoryReader(store, "other").facts() == []


@pytest.mark.parametrize(
    "call", ["memory.facts(limit=-1)", "memory.facts(limit='3')", "memory.facts(project=['a'])"]
)
def test_bad_arguments_are_template_errors(store: MemoryStore, call: str) -> None:
    with pytest.raises(TemplateError, match=r"memory\.facts"):
        render("{{ " + call + " }}", MemoryReader(store, "myapp"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("memory.relationships(type=['x'])", "memory.relationships(type=…) must be a string"),
        ("memory.entities(entity_type={})", "memory.entities(entity_type=…) must be a string"),
        ("memory.entities(search=True)", "memory.entities(search=…) must be a string, got bool"),
        ("memory.relationships(limit=2.5)", "memory.relationships(limit=…) must be a non-neg"),
    ],
)
def test_a_bad_argument_names_its_method_and_filter(
    store: MemoryStore, call: str, message: str
) -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ " + call + " }}", MemoryReader(store, "myapp"))
    assert message in str(caught.value)


def test_numbers_filter_as_their_text(store: MemoryStore) -> None:
    store.store_text('{"facts": [{"project": "7", "fact": "seven", "source": "s"}]}', ecosystem="n")
    reader = MemoryReader(store, "n")
    assert render("{{ memory.facts(project=7)[0].fact }}", reader) == "seven"
    assert render("{{ memory.entities(project=7, limit=0) | length }}", reader) == "0"
