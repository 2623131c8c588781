"""The workflow engine's cost: per-step overhead beyond spawning ``sh``, and big outputs.

1. 500 independent no-op shell steps, and a chain of 500. The floor, measured in the same
   run, is ``sh -c true`` spawned through raw asyncio subprocesses with the same concurrency
   (and, to separate the two, through ``llm_mux.process.run_process``). Prints the engine's
   overhead per step beyond each floor (target: < 2 ms beyond the raw floor).
2. A shell step printing N MB that a later step reads (``printf '%s' {{ … }} | wc -c``), for
   N = 25, 50, 100, each in a fresh process: wall time (linear in N) and peak RSS growth
   (target: under 4 times N).

Run: ``/tmp/venv/bin/python bench/dag.py`` (``--steps 200`` for a quicker run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from llm_mux.config import Config, Defaults
from llm_mux.process import ProcessRequest, run_process
from llm_mux.workflow.api import prepare, run_prepared
from llm_mux.workflow.runner import RunOptions, default_concurrency

MiB = 1024 * 1024


def workflow_text(n: int, chain: bool) -> str:
    steps = []
    for i in range(n):
        depends = f'depends_on = ["s{i - 1}"]\n' if chain and i else ""
        steps.append(f'[[steps]]\nname = "s{i}"\ntype = "shell"\nrun = "true"\n{depends}')
    return "".join(steps)


async def raw_floor(n: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            proc = await asyncio.create_subprocess_exec(
                "sh", "-c", "true", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            await proc.communicate()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start


async def runner_floor(n: int, concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            await run_process(ProcessRequest(("sh", "-c", "true")))

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return time.perf_counter() - start


async def engine(path: Path, concurrency: int) -> tuple[float, float]:
    """(prepare seconds, run seconds) of one workflow run."""
    start = time.perf_counter()
    prepared = prepare(path, config=Config(), cwd=path.parent)
    checked = time.perf_counter()
    result = await run_prepared(prepared, {}, RunOptions(concurrency=concurrency))
    assert result.success, result.error
    return checked - start, time.perf_counter() - checked


async def steps_case(directory: Path, n: int, chain: bool) -> None:
    label = f"chain of {n}" if chain else f"{n} independent"
    concurrency = 1 if chain else default_concurrency()
    path = directory / ("chain.toml" if chain else "wide.toml")
    path.write_text(workflow_text(n, chain), encoding="utf-8")
    raw = await raw_floor(n, concurrency)
    runner = await runner_floor(n, concurrency)
    checked, ran = await engine(path, concurrency)
    per = 1000 / n
    print(
        f"{label:>16} (concurrency {concurrency}): engine {ran:6.2f}s | raw sh floor {raw:5.2f}s"
        f" | run_process floor {runner:5.2f}s | validate {checked * 1000:5.0f} ms"
    )
    print(
        f"{'':>16}  overhead per step: {(ran - raw) * per:6.2f} ms beyond raw sh "
        f"(ratio {ran / raw:4.1f}), {(ran - runner) * per:6.2f} ms beyond run_process"
    )


BIG = """
[[steps]]
name = "big"
type = "shell"
run = "head -c {size} /dev/zero | tr '\\\\0' 'x'"

[[steps]]
name = "count"
type = "shell"
run = "printf '%s' {{{{ steps.big.output }}}} | wc -c"
depends_on = ["big"]
"""


async def big_case(mb: int) -> dict[str, float]:
    """In a fresh process: run the big-output workflow, report time and RSS growth."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.toml"
        path.write_text(BIG.format(size=mb * MiB), encoding="utf-8")
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        config = Config(defaults=Defaults(max_output_mb=4 * mb))
        prepared = prepare(path, config=config, cwd=Path(tmp))
        start = time.perf_counter()
        result = await run_prepared(prepared, {}, RunOptions())
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert result.success, result.error
        assert int(result.steps["count"].output.strip()) == mb * MiB
    return {"mb": mb, "seconds": elapsed, "growth_mb": (peak - base) / MiB}


def big_in_subprocess(mb: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--big", str(mb)], capture_output=True, text=True, check=True
    ).stdout
    data: dict[str, float] = json.loads(out)
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--big", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.big:
        print(json.dumps(asyncio.run(big_case(args.big))))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(steps_case(Path(tmp), args.steps, chain=False))
        asyncio.run(steps_case(Path(tmp), args.steps, chain=True))
    rows = [big_in_subprocess(mb) for mb in (25, 50, 100)]
    for row in rows:
        ratio = row["growth_mb"] / row["mb"]
        print(
            f"{row['mb']:>4.0f} MB output passed on: {row['seconds']:5.2f}s "
            f"({row['seconds'] / row['mb'] * 1000:5.1f} ms/MB), peak RSS growth "
            f"{row['growth_mb']:6.0f} MB = {ratio:.2f}x its size"
        )


if __name__ == "__main__":
    main()
