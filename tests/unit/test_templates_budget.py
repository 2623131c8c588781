"""The render budget: a runaway render stops when cancelled, past a deadline or a size cap."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from pathlib import Path

import pytest

from llm_mux.errors import TemplateError
from llm_mux.templates import ShellScript, prepare_shell, render
from llm_mux.templates.budget import limited, render_off_loop

NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
RECURSIVE = (
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
)


def render_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("llm-mux-render")]


def busy_render_threads() -> int:
    """Render threads still inside a render (a finished worker waits idle in the pool)."""
    import sys

    frames = sys._current_frames()
    count = 0
    for thread in render_threads():
        frame = frames.get(thread.ident or 0)
        while frame is not None and frame.f_code.co_name != "_within":
            frame = frame.f_back
        count += frame is not None
    return count


@pytest.mark.parametrize("template", [NESTED, RECURSIVE])
def test_a_deadline_stops_a_runaway_render(template: str) -> None:
    started = time.monotonic()
    with limited(0.3), pytest.raises(TemplateError, match="took too long") as info:
        render(template, {}, where="prompt")
    assert time.monotonic() - started < 3.0
    assert info.value.message.startswith("prompt: line 1: ")


def test_cancelling_the_caller_stops_the_worker_thread() -> None:
    async def main() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await render_off_loop(lambda: render(NESTED, {}))
        return time.monotonic() - started

    assert asyncio.run(main()) < 2.0
    deadline = time.monotonic() + 5
    while busy_render_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert busy_render_threads() == 0


def test_the_loop_stays_responsive_while_a_template_renders() -> None:
    ticks: list[float] = []

    async def heartbeat() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> None:
        beat = asyncio.create_task(heartbeat())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await render_off_loop(lambda: render(NESTED, {}))
        beat.cancel()

    asyncio.run(main())
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 10 and max(gaps) < 0.5


def test_a_script_prepared_after_cancellation_is_cleaned_up(tmp_path: Path) -> None:
    """A result that arrives after its caller was cancelled is discarded (spill files too)."""
    spill = tmp_path / "spill"
    spill.mkdir()
    loopy = "{% for i in range(3000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    calls: list[int] = []
    discarded = threading.Event()

    def work() -> ShellScript:
        calls.append(1)
        if len(calls) == 1:
            render(loopy, {})  # spends the on-loop slice: the render moves to a thread
        time.sleep(0.5)  # the caller is cancelled meanwhile; no tick can stop this part
        big = {"v": "x" * (200 * 1024)}  # spilled to a private file
        return prepare_shell("printf '%s' {{ v }}", big, spill_dir=spill)

    def discard(script: ShellScript) -> None:
        script.cleanup()
        discarded.set()

    async def main() -> None:
        task = asyncio.ensure_future(render_off_loop(work, discard=discard))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert discarded.wait(10) and calls == [1, 1]
    assert list(spill.iterdir()) == []


def test_quick_renders_stay_on_the_loop_and_give_the_same_text() -> None:
    template = "{% for i in range(5) %}{{ i }}{% endfor %}|{{ xs | join(',') }}"

    async def main() -> tuple[str, list[threading.Thread]]:
        before = len(render_threads())
        text = await render_off_loop(lambda: render(template, {"xs": [1, 2]}))
        assert len(render_threads()) == before
        return text, render_threads()

    text, _ = asyncio.run(main())
    assert text == render(template, {"xs": [1, 2]}) == "01234|1,2"


def test_output_past_the_cap_stops_the_render() -> None:
    async def main() -> None:
        await render_off_loop(
            lambda: render(
                "{% for i in range(100000) %}" + "x" * 20 + "{% endfor %}", {}, where="p"
            ),
            max_output=1024 * 1024,
        )

    with pytest.raises(TemplateError, match=r"^p: the rendered text is over 1 MiB"):
        asyncio.run(main())


@pytest.mark.parametrize(
    "template",
    [
        "{{ 10 ** 100000000 }}",
        "{{ 'ab' * 10 ** 9 }}",
        "{{ 10 ** 9 * [1] }}",
        "{{ lipsum(100000) }}",
        "{{ [1] | slice(10 ** 9) | list }}",
        "{{ 'x' | center(10 ** 9) }}",
        "{{ 'x' | indent(width=10 ** 9) }}",
    ],
)
def test_operations_too_large_to_compute_are_refused(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError, match="not allowed in a template"):
        render(template, {})
    assert time.monotonic() - started < 1.0
    assert render("{{ 2 ** 100 }} {{ 'ab' * 3 }} {{ -3 * 2 }}", {}) == f"{2**100} ababab -6"
    assert (
        render("{{ [1, 2, 3] | slice(2) | list }} {{ 'x' | center(3) }}", {}) == "[[1, 2], [3]]  x "
    )
    assert len(render("{{ lipsum(2, html=false) }}", {})) > 20
