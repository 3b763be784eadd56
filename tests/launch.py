"""Launching a test worker script in several CPU processes with torchrun (gloo on loopback)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(worker: Path, directory: Path, nproc: int = 2) -> None:
    """Runs `worker directory` on `nproc` processes; the worker writes its results into `directory`."""
    pythonpath = os.pathsep.join([str(REPO), str(worker.parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": pythonpath}
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
        f"--master_port={free_port()}", str(worker), str(directory),
    ]  # fmt: skip
    run = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"torchrun failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"


def accelerate_launch(config_file: str, recipe: str, *args: str) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file CONFIG RECIPE ARGS` from the repository root, as the README runs recipes."""
    command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", config_file, recipe, *args]
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-5000:]
    return run
