"""The memory store on PostgreSQL: URLs, masking, and a server that refuses or never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from llm_mux.errors import ConfigError, StoreError
from llm_mux.memory import MemoryStore
from llm_mux.memory.postgres import postgres_ddl, to_pyformat
from llm_mux.memory.urls import configured_url, parse_memory_url
from llm_mux.secrets import mask_url, redact

PASSWORD = "pl4nted-Pa55word"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("url", "shown", "secret"),
    [
        (f"postgresql://app:{PASSWORD}@db:6543/kb", "postgresql://app:***@db:6543/kb", PASSWORD),
        (
            f"postgres://app@db/kb?sslmode=disable&password={PASSWORD}",
            "postgres://app@db/kb?sslmode=disable&password=***",
            PASSWORD,
        ),
        ("postgresql://app:p%40ss%2Fword@db/kb", "postgresql://app:***@db/kb", "p@ss/word"),
        ("sqlite:///tmp/kb.db", "sqlite:///tmp/kb.db", None),
    ],
)
def test_passwords_are_masked_in_every_form(url: str, shown: str, secret: str | None) -> None:
    target = parse_memory_url(url)
    assert mask_url(url) == shown
    if secret is not None:
        assert secret not in redact(f"decoded {secret}, as written {url}, {target.label}")


def test_labels_name_host_port_and_database() -> None:
    assert parse_memory_url("postgresql://u:x@db.internal:6543/kb").label == "db.internal:6543/kb"
    assert parse_memory_url("postgres://u@/kb?host=/run/pg").label == "/run/pg:5432/kb"
    assert parse_memory_url("postgresql://u@h").label == "h:5432/u"
    sqlite = parse_memory_url("sqlite:////abs/kb.db")
    assert sqlite.kind == "sqlite" and str(sqlite.path) == "/abs/kb.db"


@pytest.mark.parametrize("url", ["mysql://u:p@h/db", "kb.db", "sqlite://relative.db"])
def test_other_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_memory_url(url)


def test_environment_wins_and_variables_expand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_PASSWORD", "from-the-environment")
    assert configured_url("postgresql://u:${KB_PASSWORD}@h/db") == (
        "postgresql://u:from-the-environment@h/db"
    )
    assert "from-the-environment" not in redact("postgresql://u:from-the-environment@h/db")
    monkeypatch.setenv("LLM_MUX_MEMORY_URL", "sqlite:///x.db")
    assert configured_url("postgresql://u@h/db") == "sqlite:///x.db"


def test_one_sql_text_for_both_stores() -> None:
    sql = "UPDATE t SET a = :a, b = '%' WHERE c = :c_1 AND d::text = 'x'"
    assert to_pyformat(sql) == (
        "UPDATE t SET a = %(a)s, b = '%%' WHERE c = %(c_1)s AND d::text = 'x'"
    )
    assert postgres_ddl("confidence REAL NOT NULL") == "confidence DOUBLE PRECISION NOT NULL"


def test_a_refused_connection_names_the_server_and_hides_the_password() -> None:
    port = closed_port()
    store = MemoryStore(f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/kb")
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        store.facts()
    message = info.value.format()
    assert f"memory database unavailable at 127.0.0.1:{port}/kb (" in message
    assert PASSWORD not in message and time.monotonic() - started < 5


def test_a_silent_server_fails_within_connect_timeout(silent_port: int) -> None:
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{silent_port}/kb?connect_timeout=2"
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        MemoryStore(url).store_text(
            '{"facts": [{"project": "p", "fact": "f", "source": "s"}]}', ecosystem=None
        )
    elapsed = time.monotonic() - started
    assert 1.5 < elapsed < 6, elapsed
    message = info.value.format()
    assert f"unavailable at 127.0.0.1:{silent_port}/kb" in message and PASSWORD not in message


def test_a_password_in_the_url_reaches_no_row(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@")  # trust ignores it
    store = MemoryStore(url)
    store.store_text(
        f'{{"facts": [{{"project": "p", "fact": "{url}", "source": "s"}}]}}', ecosystem=None
    )
    assert store.location.endswith(url.rsplit("/", 1)[1]) and PASSWORD not in repr(store)
    with store.session("read") as db:
        assert PASSWORD not in repr(db.rows("SELECT * FROM facts"))


def test_confidence_keeps_double_precision(postgres_url: str) -> None:
    store = MemoryStore(postgres_url)
    store.store_text(
        '{"facts": [{"project": "p", "fact": "f", "source": "s", "confidence": 0.7}]}',
        ecosystem=None,
    )
    assert store.facts()[0]["confidence"] == 0.7
