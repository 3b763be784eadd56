"""What bench_methods.py and sweep.py share: train one method through the real recipe.

Both run every training in its own process (`python recipes/<task>.py --config … --method …`), so one run cannot
leak state into the next and what is measured is what a user runs.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"multiplication": "multiplication", "arithmetic": "arithmetic", "lis": "lis"}  # builder → recipe


def run_recipe(
    builder: str, config: Path, method: str, output: Path, log: Path, *, threads: int | None = 1, extra: list[str] = ()
) -> dict:
    """One recipe run in its own process: its results.json plus `wall_s` and `cpu_s` (the child's user + system).

    `threads` sets OMP/MKL threads (1: on 2 shared cores a 2-thread team stalls whenever another job holds a core).
    """
    recipe = ROOT / "recipes" / f"{RECIPES[builder]}.py"
    command = [
        sys.executable,
        str(recipe),
        "--config",
        str(config),
        "--method",
        method,
        "--output_dir",
        str(output),
        *extra,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the log shows progress while the run goes
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    print(f"[{time.strftime('%H:%M:%S')}] {method}: {shlex.join(command)}", flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as handle:
        status = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if status:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{method} run failed (exit {status}); last lines of {log}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads((output / "results.json").read_text()) | {"wall_s": wall, "cpu_s": cpu, "command": command}
