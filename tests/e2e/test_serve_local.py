"""``llm-mux serve`` streaming the real SmolLM2-135M model token by token."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest

from llm_mux.backends.local_model import LocalModelError, smollm2_file
from tests.serve_support import serving

pytest.importorskip("xllamacpp")
try:
    smollm2_file()
except LocalModelError:
    pytest.skip("the SmolLM2 model is not installed", allow_module_level=True)

CONFIG = """
[backends.tiny]
type = "local"
max_tokens = 40
parallel = 2
"""


def test_local_model_streams_token_by_token(tmp_path: Path) -> None:
    with serving(CONFIG, tmp_path) as served:
        client = openai.OpenAI(base_url=served.url + "/v1", api_key="-", max_retries=0, timeout=90)
        stream = client.chat.completions.create(
            model="tiny",
            messages=[
                {"role": "system", "content": "You answer briefly."},
                {"role": "user", "content": "Name three colours."},
            ],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        pieces = [
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        ]
        assert len(pieces) >= 5, pieces  # one chunk per token, not one block
        assert "".join(pieces).strip()
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= len(pieces)
        other = anthropic.Anthropic(base_url=served.url, api_key="-", max_retries=0, timeout=90)
        with other.messages.stream(
            model="tiny", max_tokens=10, messages=[{"role": "user", "content": "Say hello."}]
        ) as events:
            texts = [e.delta.text for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
            final = events.get_final_message()
        assert len(texts) >= 2
        assert 0 < final.usage.output_tokens <= 10
        whole = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "Say hi."}], max_tokens=5
        )
        assert whole.usage is not None and 0 < whole.usage.completion_tokens <= 5
