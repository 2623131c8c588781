"""Step results through the ledger's JSON, and the input hash's sensitivity."""

from __future__ import annotations

import json
from pathlib import Path

from llm_mux.workflow.model import ShellStep
from llm_mux.workflow.results import (
    Outputs,
    QueryRequest,
    StepResult,
    query_request,
    set_json,
    set_request,
    step_document,
)
from llm_mux.workflow.resume import decode_result, encode_result, input_hash


def test_a_result_comes_back_as_it_was_recorded(tmp_path: Path) -> None:
    result = StepResult("ask", output="one\n\ntwo")
    result.outputs = Outputs(["one", "two"], ["a", "b"])
    result.backends, result.usage, result.extra = ["a", "b"], {"total_tokens": 3}, {"k": 1}
    set_json(result, {"parsed": True})
    set_request(result, QueryRequest("the prompt", "reviewer", None))
    item = StepResult("ask[1]", "failed", output="x")
    item.item, item.error = {"file": "a.py"}, "boom"
    result.items = [item]
    stored = json.loads(json.dumps(encode_result(result, tmp_path)))
    back = decode_result("ask", stored)
    assert step_document(back) == step_document(result)
    assert back.outputs.b == "two" and back.k == 1
    assert query_request(back) == QueryRequest("the prompt", "reviewer", None)
    assert back.items is not None and back.items[0].item == {"file": "a.py"}


def test_a_single_output_is_stored_once_and_never_parsed(tmp_path: Path) -> None:
    result = StepResult("big", output='{"a": 1}')
    stored = encode_result(result, tmp_path)
    assert "outputs" not in stored and stored["json"] is None
    back = decode_result("big", stored)
    assert list(back.outputs) == ['{"a": 1}'] and back.json == {"a": 1}


def test_the_hash_follows_definition_rendered_inputs_and_item() -> None:
    step = ShellStep(name="s", type="shell", run="echo {{ args.x }}")
    base = input_hash(step, {"args": {"x": "1"}}, None, -1)
    assert base == input_hash(step, {"args": {"x": "1"}}, None, -1)
    assert base != input_hash(step, {"args": {"x": "2"}}, None, -1)
    edited = ShellStep(name="s", type="shell", run="echo {{ args.x }}!")
    assert base != input_hash(edited, {"args": {"x": "1"}}, None, -1)
    assert base != input_hash(step, {"args": {"x": "1"}}, {"backends": {"b": {}}}, -1)
    with_item = input_hash(step, {"args": {"x": "1"}, "item": "a"}, None, 0)
    assert with_item != input_hash(step, {"args": {"x": "1"}, "item": "b"}, None, 0)


def test_every_result_answers_resumed() -> None:
    fresh = StepResult("a")
    assert fresh.resumed is False and "resumed" not in step_document(fresh)
    again = decode_result("a", encode_result(StepResult("a", output="x"), Path.cwd()))
    assert again.resumed is False
    again.extra["resumed"] = True
    assert again.resumed is True and step_document(again)["resumed"] is True


def test_a_runaway_template_cannot_hold_the_hash() -> None:
    """Hashing renders under the run's budget: cancelled, it stops instead of looping on."""
    import asyncio
    import time

    from llm_mux.memory.ledger import Ledger
    from llm_mux.workflow.resume import Journal

    step = ShellStep(
        name="s",
        type="shell",
        run="{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
    )
    journal = Journal(Ledger(None, "me", 30), "r", {}, Path.cwd(), {})  # type: ignore[arg-type]

    async def main() -> float:
        task = asyncio.ensure_future(journal.reuse(step, {}))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return time.monotonic() - started

    assert asyncio.run(main()) < 2
