"""Start-up time of four commands against the floor ``python3 -c pass``, measured in one run.

The project holds 65 backends and one role; ``ask`` and ``run`` talk to an instant loopback
server in a process of its own. Each command runs N times, interleaved with the floor so
that a busy machine slows both alike; the figures are the minimum wall time (the least
disturbed run) and the minimum CPU time (user + system, less sensitive to load), each with
its ratio to the floor's. Goals: --version 2x, backends 6x, ask 10x, run 12x.

The package is byte-compiled first, as an installed one is: a source file without its
``.pyc`` (in a checkout run with PYTHONDONTWRITEBYTECODE) is compiled again on every start.
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.server import in_subprocess

RUNS = 15
GOALS = {"--version": 2.0, "backends": 6.0, "ask": 10.0, "run": 12.0}
KINDS = ("cli", "openai", "ollama", "anthropic", "mock")


def write_project(root: Path, url: str) -> None:
    """A project with 65 backends of every type, one role, and a one-step workflow."""
    lines = ["[backends.B]", f'command = "{url}/v1"', 'model = "m"', ""]
    for i in range(64):
        kind = KINDS[i % len(KINDS)]
        lines.append(f"[backends.b{i}]")
        if kind == "cli":
            lines += [f'command = "tool{i}"', 'args = ["-p"]']
        elif kind == "mock":
            lines += ['type = "mock"', 'response = "ok"']
        else:
            lines += [f'type = "{kind}"', f'command = "{url}"', f'model = "m{i}"']
            lines.append('api_key = "${NOT_SET_ANYWHERE}"')
        lines.append("")
    lines += ["[roles.quick]", 'backends = ["B"]', ""]
    (root / ".llm-mux" / "workflows").mkdir(parents=True)
    (root / ".llm-mux" / "config.toml").write_text("\n".join(lines))
    (root / ".llm-mux" / "workflows" / "one.toml").write_text(
        '[[steps]]\nname = "q"\ntype = "query"\nrole = "quick"\nprompt = "hi"\n'
    )


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of ``argv``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    import llm_mux

    compileall.compile_dir(Path(llm_mux.__file__).parent, quiet=1)
    exe = str(Path(sys.executable).parent / "llm-mux")
    commands = {
        "--version": [exe, "--version"],
        "backends": [exe, "backends"],
        "ask": [exe, "ask", "B", "hi"],
        "run": [exe, "run", "one"],
    }
    floor_argv = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory() as tmp, in_subprocess(0.0, lean=True) as url:
        root = Path(tmp)
        write_project(root, url)
        env = {**os.environ, "HOME": tmp, "TMPDIR": tmp, "XDG_CONFIG_HOME": str(root / "xdg")}
        floors: list[tuple[float, float]] = []
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(RUNS):
            for name, argv in commands.items():
                floors.append(timed(floor_argv, root, env))
                times[name].append(timed(argv, root, env))
    floor, floor_cpu = (min(f[i] for f in floors) for i in (0, 1))
    print(f"load average {os.getloadavg()[0]:.2f}; min of {RUNS} runs, interleaved with the floor")
    print(f"{'':24} {'wall':>8} {'ratio':>6} {'goal':>5}   {'cpu':>8} {'ratio':>6}")
    print(f"{'python3 -c pass':24} {floor * 1000:6.1f}ms {'':6} {'':5}   {floor_cpu * 1000:6.1f}ms")
    for name, samples in times.items():
        wall, cpu = (min(s[i] for s in samples) for i in (0, 1))
        ratio, goal = wall / floor, GOALS[name]
        print(
            f"{'llm-mux ' + name:24} {wall * 1000:6.1f}ms {ratio:5.1f}x {goal:4g}x   "
            f"{cpu * 1000:6.1f}ms {cpu / floor_cpu:5.1f}x  {'ok' if ratio <= goal else 'OVER'}"
        )


if __name__ == "__main__":
    main()
