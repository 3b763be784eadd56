"""The README's command blocks run as written, in order, in a bare copy of the project (offline, CPU).

A ```bash block is run unless the line before it is `<!-- not run by the tests: REASON -->`; the reason must
say where else that block's path is tested (a GPU, a Hub account and the suite itself cannot run here).
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_first_hour import ROOT, bare_copy

SKIP_MARK = "<!-- not run by the tests:"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```bash\n(?P<body>.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str | None]]:
    """(commands, reason not run or None) for every bash block of README.md, in order."""
    blocks = []
    for match in BLOCK.finditer((ROOT / "README.md").read_text()):
        before = match["before"].strip()
        reason = before.removeprefix(SKIP_MARK).removesuffix("-->").strip() if before.startswith(SKIP_MARK) else None
        blocks.append((match["body"], reason))
    return blocks


def test_every_block_either_runs_or_says_why_not():
    blocks = readme_blocks()
    assert blocks and any(reason is None for _, reason in blocks)
    assert all(reason for _, reason in blocks if reason is not None)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # every README command at its CPU size, about 5 minutes on an idle 2-core machine
def test_readme_blocks_run_in_order_in_a_bare_copy(tmp_path):
    project = bare_copy(tmp_path / "hf-seqvcr")
    venv_bin = str(Path(sys.executable).parent)
    # one thread: two OpenMP threads on two cores stall whenever another job holds a core (bench/README.md)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(project),
        "OMP_NUM_THREADS": "1",
        "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "")]),
    }
    for body, reason in readme_blocks():
        if reason is not None:
            continue
        start = time.perf_counter()
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body], cwd=project, env=env, capture_output=True, text=True, timeout=1200
        )
        assert run.returncode == 0, f"README block failed:\n{body}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
        print(f"{time.perf_counter() - start:6.1f} s  {body.splitlines()[0]}")
