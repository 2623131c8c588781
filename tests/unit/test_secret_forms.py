"""Secrets are masked in every spelling an output can hold them in, and fast on large text."""

from __future__ import annotations

import base64
import html
import json
import time
import urllib.parse
from collections.abc import Callable

import pytest

from llm_mux.secret_forms import Masker
from llm_mux.secrets import redact_data

SECRETS = [
    'sk-"quoted"-8f3a9c',
    "sk-back\\slash\\9f2e",
    "sk-unicodé-ключ-😀-4d1c",
    "sk-all\"\\/\n\t<&>'-mix-77aa",
    "plainalnumsecret0123456789",
]

ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "json": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
    "json-ascii": lambda s: json.dumps(s)[1:-1],
    "json-in-json": lambda s: json.dumps(json.dumps(s))[1:-1],
    "json-in-json-in-json": lambda s: json.dumps(json.dumps(json.dumps(s)))[1:-1],
    "every-char-uXXXX": lambda s: "".join(
        json.dumps(c)[1:-1] if ord(c) > 0xFFFF else f"\\u{ord(c):04X}" for c in s
    ),
    "python-repr": lambda s: repr(s)[1:-1],
    "python-ascii": lambda s: ascii(s)[1:-1],
    "url": lambda s: urllib.parse.quote(s, safe=""),
    "url-lower": lambda s: urllib.parse.quote(s, safe="").lower(),
    "url-plus": urllib.parse.quote_plus,
    "html": html.escape,
    "html-numeric": lambda s: "".join(f"&#{ord(c)};" if not c.isalnum() else c for c in s),
    "base64": lambda s: base64.b64encode(s.encode()).decode(),
    "base64-basic-auth": lambda s: base64.b64encode(b"user:" + s.encode()).decode(),
    "base64-offset-2": lambda s: base64.b64encode(b"ab" + s.encode()).decode(),
    "base64-urlsafe": lambda s: base64.urlsafe_b64encode(b"x" + s.encode()).decode(),
}


def leaks(secret: str, text: str) -> list[str]:
    """The encodings of ``secret`` (long enough to be told apart) still present in ``text``."""
    found = []
    for name, encode in ENCODINGS.items():
        spelled = encode(secret)
        if name.startswith("base64"):
            core = base64.b64encode(secret.encode()).decode()[2:-4]
            if core in text:
                found.append(name)
        elif spelled in text:
            found.append(name)
    return found


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_every_spelling_is_masked(secret: str, encoding: str) -> None:
    masker = Masker(frozenset({secret}))
    spelled = ENCODINGS[encoding](secret)
    text = f"before {spelled} after"
    masked = masker.mask(text, "***")
    assert "***" in masked
    assert masked.startswith("before ") or encoding.startswith("base64")
    assert spelled not in masked
    assert leaks(secret, masked) == []


def test_inside_a_json_document_and_nested() -> None:
    secret = SECRETS[3]
    masker = Masker(frozenset({secret}))
    inner = json.dumps({"answer": f"key={secret}"})
    outer = json.dumps({"output": inner, "list": [secret]}, indent=2)
    masked = masker.mask(outer, "***")
    assert leaks(secret, masked) == []
    document = json.loads(masked)  # still valid JSON: only whole escapes were replaced
    assert "***" in document["output"] and document["list"] == ["***"]


def test_ordinary_text_is_untouched() -> None:
    masker = Masker(frozenset(SECRETS))
    text = 'sk- "quoted" back\\slash unicodé ключ plainalnum 0123456789 &amp; %22 \\u0022'
    assert masker.mask(text, "***") == text


def test_longer_secret_containing_another_is_masked_whole() -> None:
    masker = Masker(frozenset({"abcd-1234", "xx-abcd-1234-yy"}))
    assert masker.mask('"xx-abcd-1234-yy" and abcd-1234', "***") == '"***" and ***'


def test_redact_data_masks_values_and_keys_before_serialising() -> None:
    from llm_mux import secrets

    secret = 'tok-"data"\\é-5e6f'
    secrets.register(secret)
    data = {"out": f"x{secret}y", secret: [secret, 3, None, (secret,)]}
    text = json.dumps(redact_data(data))
    assert leaks(secret, text) == []
    assert json.loads(text) == {"out": "x***y", "***": ["***", 3, None, ["***"]]}


def test_large_output_is_masked_in_linear_time() -> None:
    """64 MiB of text costs about as much as scanning it a few times, not seconds per MB."""
    masker = Masker(frozenset(SECRETS))
    chunk = 'lorem ipsum {"a": "x\\ny", "b": "%20&amp;"} dolor sit amet, '
    text = chunk * (8 * 1024 * 1024 // len(chunk)) + SECRETS[0]
    started = time.perf_counter()
    baseline = [text.find(s) for s in SECRETS * 4]
    floor = time.perf_counter() - started
    started = time.perf_counter()
    masked = masker.mask(text, "***")
    took = time.perf_counter() - started
    assert baseline and masked.endswith("***")
    # a handful of substring scans per secret, plus the base64 literals; generous for load
    assert took < max(40 * floor, 2.0), (took, floor)


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("redis://:s3cr3t-pw@h:6379/0", "redis://:***@h:6379/0", "s3cr3t-pw"),
        (
            "redis://h:6379/0?password=s3cr3t-qp&db=1",
            "redis://h:6379/0?password=***&db=1",
            "s3cr3t-qp",
        ),
        ("rediss://u:p%40ss-w0rd@h/0", "rediss://u:***@h/0", "p@ss-w0rd"),
        ("redis://[::1", "***", None),
    ],
)
def test_a_url_shows_no_password_and_registers_every_spelling(
    url: str, shown: str, password: str | None
) -> None:
    from urllib.parse import quote

    from llm_mux.secrets import mask_url, redact

    assert mask_url(url) == shown
    if password is not None:
        for spelling in (password, quote(password, safe="")):
            assert spelling not in redact(f"said {spelling} here")
