"""The step graph: deterministic order, cycle naming, ancestry, and the async scheduler.

Nodes are step indices in file order. Ties are always broken by file order, so two runs of
the same workflow start steps in the same order. The scheduler is plain asyncio: one task
per running node, a completion queue (O(1) per finished step, however many run at once),
and no thread pool.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Mapping, Sequence

from llm_mux.values import Value


class Graph(Value):
    """Dependencies between named nodes; unknown dependency names are left out."""

    names: tuple[str, ...]
    deps: tuple[tuple[int, ...], ...]
    dependents: tuple[tuple[int, ...], ...]

    @classmethod
    def build(cls, names: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> Graph:
        index = {name: i for i, name in enumerate(names)}
        deps = tuple(
            tuple(dict.fromkeys(index[d] for d in depends_on.get(n, ()) if d in index))
            for n in names
        )
        dependents: list[list[int]] = [[] for _ in names]
        for i, node_deps in enumerate(deps):
            for d in node_deps:
                dependents[d].append(i)
        return cls(tuple(names), deps, tuple(tuple(d) for d in dependents))

    def order(self) -> list[int] | None:
        """A topological order preferring file order; None when there is a cycle."""
        pending = [len(d) for d in self.deps]
        ready = [i for i, n in enumerate(pending) if n == 0]
        order: list[int] = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for child in self.dependents[node]:
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(ready, child)
        return order if len(order) == len(self.names) else None

    def find_cycle(self) -> list[str] | None:
        """The first cycle met in file order, closed: ``["a", "b", "a"]``."""
        state = [0] * len(self.names)  # 0 new, 1 on the path, 2 finished
        for root in range(len(self.names)):
            cycle = self._cycle_from(root, state)
            if cycle is not None:
                return [self.names[i] for i in cycle]
        return None

    def _cycle_from(self, root: int, state: list[int]) -> list[int] | None:
        if state[root]:
            return None
        path, stack = [root], [iter(self.deps[root])]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state[child] == 1:
                return [*path[path.index(child) :], child]
            elif state[child] == 0:
                state[child] = 1
                path.append(child)
                stack.append(iter(self.deps[child]))
        return None

    def ancestors(self, order: Sequence[int]) -> list[int]:
        """Per node, a bitset of every node it (transitively) depends on."""
        bits = [0] * len(self.names)
        for node in order:
            mask = 0
            for d in self.deps[node]:
                mask |= bits[d] | (1 << d)
            bits[node] = mask
        return bits


Runner = Callable[[int], Awaitable[bool]]


class Scheduler:
    """Run every node once its dependencies are done, up to ``limit`` at a time.

    ``run(node)`` returns False to stop the whole run: nothing new starts and running nodes
    are cancelled. ``started`` and ``finished`` tell the caller what happened, also after
    the scheduler itself was cancelled (interruption, workflow timeout).
    """

    def __init__(self, graph: Graph, run: Runner, *, limit: int | None = None) -> None:
        self.graph = graph
        self._run = run
        self.limit = max(1, limit or len(graph.names) or 1)
        self.started: list[int] = []
        self.finished: set[int] = set()
        self.stopped_by: int | None = None
        self._running: dict[asyncio.Task[bool], int] = {}

    async def run(self) -> None:
        pending = [len(d) for d in self.graph.deps]
        ready = [i for i, n in enumerate(pending) if n == 0]
        done: asyncio.Queue[asyncio.Task[bool]] = asyncio.Queue()
        try:
            while True:
                while ready and len(self._running) < self.limit:
                    self._start(heapq.heappop(ready), done)
                if not self._running:
                    return
                node, keep_going = self._collect(await done.get())
                if not keep_going:
                    self.stopped_by = node
                    return
                for child in self.graph.dependents[node]:
                    pending[child] -= 1
                    if pending[child] == 0:
                        heapq.heappush(ready, child)
        finally:
            await self._cancel_running()

    def _start(self, node: int, done: asyncio.Queue[asyncio.Task[bool]]) -> None:
        task = asyncio.ensure_future(self._run(node))
        self._running[task] = node
        self.started.append(node)
        task.add_done_callback(done.put_nowait)

    def _collect(self, task: asyncio.Task[bool]) -> tuple[int, bool]:
        node = self._running.pop(task)
        keep_going = task.result()  # an executor bug propagates after cleanup
        self.finished.add(node)
        return node, keep_going

    async def _cancel_running(self) -> None:
        """Cancel running nodes and wait until each has cleaned up (children stopped)."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        cancelled_again = False
        while not all(task.done() for task in tasks):
            try:
                await asyncio.wait(tasks)
            except asyncio.CancelledError:
                cancelled_again = True
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: a cancelled node's error is not news
        self._running.clear()
        if cancelled_again:
            raise asyncio.CancelledError
