"""The cheap paths start-up takes keep the behaviour of the full ones.

Markup-free templates render without Jinja exactly as Jinja would; plain-``http`` pools
skip loading CA certificates while ``https`` still verifies against them.
"""

from __future__ import annotations

import ssl

import httpx2 as httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_mux import templates
from llm_mux.backends import http
from llm_mux.templates import environment
from llm_mux.templates.plain import is_plain, plain_text
from tests.fakes.server import FakeLLMServer

TEXT = st.text(alphabet=st.sampled_from(list("ab {}%#\r\n\t$'\"\\é\x0b\u2028")), max_size=40)


@given(TEXT)
def test_plain_text_renders_as_jinja_does(source: str) -> None:
    if is_plain(source):
        assert plain_text(source) == environment.render(source, {})
        assert templates.render(source, {}) == environment.render(source, {})


@pytest.mark.parametrize("source", ["{{ x }}", "a {% if 1 %}b{% endif %}", "{# note #}", "{{"])
def test_markup_is_never_plain(source: str) -> None:
    assert not is_plain(source)


def test_markup_still_goes_through_jinja() -> None:
    assert templates.render("{{ 6 * 7 }}\r\n", {}) == "42\n"
    with pytest.raises(Exception, match="x"):
        templates.render("{{ x }}", {})
    with pytest.raises(Exception, match="line 1"):
        templates.check_syntax("{% if %}")
    assert templates.step_references("{{ steps.a.output }} {{ steps['b'] }}") == {"a", "b"}
    assert templates.step_references("steps.a.output") == set()


async def test_plain_http_loads_no_certificates(llm_server: FakeLLMServer) -> None:
    holder = http.HttpClientHolder()
    try:
        client = holder.get()
        answer = await client.get(f"{llm_server.url}/v1/models")
        assert answer.status_code < 500
        assert getattr(client._transport, "_ssl", "missing") is None
    finally:
        await holder.aclose()


async def test_https_builds_one_verifying_context(llm_server: FakeLLMServer) -> None:
    holder = http.HttpClientHolder()
    https_url = llm_server.url.replace("http://", "https://")
    try:
        client = holder.get()
        for _ in range(2):  # the plain server cannot speak TLS: each handshake fails
            with pytest.raises(httpx.HTTPError):
                await client.get(f"{https_url}/v1/models")
        context = client._transport._ssl  # type: ignore[attr-defined]
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0  # the system's CAs are loaded
    finally:
        await holder.aclose()
