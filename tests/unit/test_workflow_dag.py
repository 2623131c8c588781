"""The step graph and the scheduler, in-process with fake step executors."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_mux.workflow.dag import Graph, Scheduler


def graph(edges: dict[str, list[str]], names: list[str] | None = None) -> Graph:
    return Graph.build(names or list(edges), edges)


def test_order_prefers_file_order_where_the_dag_leaves_a_choice() -> None:
    g = graph({"c": [], "a": ["c"], "b": [], "d": ["a", "b"]})
    assert [g.names[i] for i in g.order() or []] == ["c", "a", "b", "d"]


def test_cycle_is_named_in_order() -> None:
    g = graph({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    assert g.order() is None
    assert g.find_cycle() == ["a", "c", "b", "a"]


def test_self_dependency_is_a_cycle() -> None:
    assert graph({"a": ["a"]}).find_cycle() == ["a", "a"]


def test_acyclic_graph_has_no_cycle() -> None:
    assert graph({"a": [], "b": ["a"]}).find_cycle() is None


def test_unknown_dependencies_are_left_out() -> None:
    g = graph({"a": ["ghost"], "b": ["a", "a"]})
    assert g.deps == ((), (0,))


def test_ancestors_are_transitive_bitsets() -> None:
    g = graph({"a": [], "b": ["a"], "c": ["b"], "d": []})
    bits = g.ancestors(g.order() or [])
    assert bits == [0, 0b1, 0b11, 0]


@st.composite
def dags(draw: st.DrawFn) -> tuple[Graph, list[int]]:
    """A random DAG (edges only to earlier nodes, names shuffled) and per-node work sizes."""
    size = draw(st.integers(min_value=1, max_value=14))
    deps = {
        f"s{i}": [f"s{j}" for j in range(i) if draw(st.booleans()) and draw(st.booleans())]
        for i in range(size)
    }
    names = draw(st.permutations(list(deps)))
    work = draw(st.lists(st.integers(0, 3), min_size=size, max_size=size))
    return Graph.build(names, deps), work


class Recorder:
    """A fake executor: logs start/end on a logical clock, yields ``work`` times."""

    def __init__(self, g: Graph, work: list[int]) -> None:
        self.g, self.work = g, work
        self.log: list[tuple[str, int]] = []
        self.running = 0
        self.peak = 0

    async def __call__(self, node: int) -> bool:
        self.log.append(("start", node))
        self.running += 1
        self.peak = max(self.peak, self.running)
        for _ in range(self.work[node]):
            await asyncio.sleep(0)
        self.running -= 1
        self.log.append(("end", node))
        return True


async def run_schedule(g: Graph, work: list[int], limit: int | None) -> Recorder:
    recorder = Recorder(g, work)
    await Scheduler(g, recorder, limit=limit).run()
    return recorder


@settings(max_examples=60, deadline=None)
@given(dags(), st.sampled_from([None, 1, 2, 3]))
def test_every_step_starts_after_its_dependencies_end(
    case: tuple[Graph, list[int]], limit: int | None
) -> None:
    g, work = case
    recorder = asyncio.run(run_schedule(g, work, limit))
    position = {event: i for i, event in enumerate(recorder.log)}
    assert sorted(n for kind, n in recorder.log if kind == "start") == list(range(len(g.names)))
    for node, deps in enumerate(g.deps):
        for dep in deps:
            assert position[("end", dep)] < position[("start", node)]
    if limit is not None:
        assert recorder.peak <= limit


@settings(max_examples=40, deadline=None)
@given(dags())
def test_results_are_deterministic(case: tuple[Graph, list[int]]) -> None:
    g, work = case
    first = asyncio.run(run_schedule(g, work, None)).log
    second = asyncio.run(run_schedule(g, work, None)).log
    assert first == second


@settings(max_examples=40, deadline=None)
@given(dags())
def test_independent_steps_overlap_without_a_limit(case: tuple[Graph, list[int]]) -> None:
    g, _ = case
    roots = [i for i, deps in enumerate(g.deps) if not deps]
    started: set[int] = set()
    all_roots = asyncio.Event()

    async def executor(node: int) -> bool:
        started.add(node)
        if set(roots) <= started:
            all_roots.set()
        if node in roots:  # a root finishes only once every root is running
            await asyncio.wait_for(all_roots.wait(), 5)
        return True

    asyncio.run(Scheduler(g, executor).run())
    assert set(roots) <= started


async def test_a_false_result_stops_the_run_and_cancels_running_steps() -> None:
    g = graph({"slow": [], "bad": [], "later": ["bad"], "other": []})
    cancelled: list[str] = []

    async def executor(node: int) -> bool:
        name = g.names[node]
        if name == "bad":
            await asyncio.sleep(0.01)
            return False
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return True

    scheduler = Scheduler(g, executor, limit=3)
    await asyncio.wait_for(scheduler.run(), 2)
    assert scheduler.stopped_by == g.names.index("bad")
    assert sorted(cancelled) == ["other", "slow"]
    assert [g.names[i] for i in scheduler.started] == ["slow", "bad", "other"]  # not "later"


async def test_cancelling_the_scheduler_cancels_and_awaits_running_steps() -> None:
    g = graph({"a": [], "b": []})
    cleaned: list[str] = []

    async def executor(node: int) -> bool:
        try:
            await asyncio.sleep(5)
        finally:
            await asyncio.sleep(0.01)  # cleanup that itself awaits
            cleaned.append(g.names[node])
        return True

    task = asyncio.ensure_future(Scheduler(g, executor).run())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cleaned) == ["a", "b"]


async def test_executor_bug_propagates_after_cleanup() -> None:
    g = graph({"a": [], "b": []})

    async def executor(node: int) -> bool:
        if node == 0:
            raise RuntimeError("boom")
        await asyncio.sleep(5)
        return True

    with pytest.raises(RuntimeError, match="boom"):
        await asyncio.wait_for(Scheduler(g, executor).run(), 2)
