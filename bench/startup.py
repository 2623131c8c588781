"""Start-up time of ``llm-mux --version`` against the floor ``python3 -c pass``.

Prints the median wall time of each over N runs and the ratio (target: at most 3x).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 10


def median_wall(argv: list[str], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    executable = Path(sys.executable).parent / "llm-mux"
    floor = median_wall([sys.executable, "-c", "pass"])
    version = median_wall([str(executable), "--version"])
    help_time = median_wall([str(executable), "--help"])
    print(f"python3 -c pass      : {floor * 1000:7.1f} ms (floor)")
    ratio = version / floor
    print(f"llm-mux --version    : {version * 1000:7.1f} ms  ratio {ratio:.2f}x (target <= 3x)")
    print(f"llm-mux --help       : {help_time * 1000:7.1f} ms  ratio {help_time / floor:.2f}x")


if __name__ == "__main__":
    main()
