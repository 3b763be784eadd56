"""A new user's first command works from a bare copy of the project: no ../shared beside it, no network."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bare_copy(destination: Path) -> Path:
    """The checkout as a clone gets it (tracked files and untracked ones git does not ignore), nothing beside it."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (ROOT / name).is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name).read_bytes())
    return destination


def make_recipe(target: str) -> list[str]:
    """The command a Makefile target runs, with the venv's tools (the Makefile is the one home of that command)."""
    lines = (ROOT / "Makefile").read_text().split(f"\n{target}:", 1)[1].split("\n")[1:]
    command = next(line.strip() for line in lines if line.startswith("\t"))
    return [
        str(Path(sys.executable).parent / word.removeprefix("$(BIN)/")) if word.startswith("$(BIN)/") else word
        for word in shlex.split(command)
    ]


@pytest.mark.slow
def test_make_demo_runs_offline_from_a_bare_copy(tmp_path):
    project = bare_copy(tmp_path / "hf-seqvcr")
    assert not (project.parent / "shared").exists()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(project), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(make_recipe("demo"), cwd=project, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "exact match" in run.stdout
    assert (project / "outputs" / "gsm8k-seqvcr_pause" / "results.json").is_file()
