"""Backend errors declare what the retry loop and the roles read from them."""

from __future__ import annotations

from llm_mux.errors import Failed, RateLimited, Unavailable, WorkflowError


def test_a_backend_error_counts_one_attempt_until_retried() -> None:
    error = Failed("boom", backend="b")
    assert error.attempts == 1
    error.attempts = 3
    assert error.attempts == 3 and RateLimited("slow").attempts == 1


def test_keyword_fields_reach_the_base_class() -> None:
    error = Unavailable("gone", not_found=True, backend="b", status=None, hint="install it")
    assert error.not_found and error.backend == "b"
    assert error.format() == "backend 'b': Unavailable: gone\nhint: install it"
    located = WorkflowError("bad", step="s", file="wf.toml", line=3)
    assert located.format() == "wf.toml:3: step 's': bad"
