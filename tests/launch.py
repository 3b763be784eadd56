"""Launching a test worker or recipe in several CPU processes (torchrun, or accelerate on top of it), on loopback.

No port is picked here: a port found free and then released can be taken by another run before torchrun binds it
(the flake this module used to have). torchrun's c10d rendezvous on port 0 lets the OS assign the store's port,
and the workers' process group reuses that store (TORCHELASTIC_USE_AGENT_STORE), so no port is ever guessed.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch.distributed as dist

from hf_seqvcr.distributed import settle_gloo_workers

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def environment() -> dict[str, str]:
    """The launched processes import this checkout (not an editable install elsewhere) and talk over loopback only.

    torchrun reads its options' defaults from PET_* variables; accelerate forwards those it has no flag for, so one
    environment serves both launchers.
    """
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "PET_RDZV_BACKEND": "c10d",
        "PET_RDZV_ENDPOINT": f"{LOOPBACK}:0",  # the rendezvous store binds a port the OS picks
        "PET_LOCAL_ADDR": LOOPBACK,  # MASTER_ADDR for the workers (default: this host's name)
        "GLOO_SOCKET_IFNAME": "lo",  # gloo's pairwise connections on loopback, not the host's first interface
        "PYTHONFAULTHANDLER": "1",  # a rank that aborts prints every thread's stack
    }


def end_worker() -> None:
    """A launched worker's last call, as `Trainer.end` in a trainer's: gloo's threads let go of the last collective
    (`settle_gloo_workers`; without it a rank can abort at exit), then the process group is destroyed."""
    settle_gloo_workers()
    dist.destroy_process_group()


def torchrun(worker: Path, directory: Path, nproc: int = 2, timeout: int = 300) -> None:
    """Runs `worker directory` on `nproc` processes; the worker writes its results into `directory`."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", str(worker), str(directory)]
    run = subprocess.run(command, env=environment(), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"torchrun failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"


def accelerate_launch(config_file: str, recipe: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`accelerate launch --config_file CONFIG RECIPE ARGS` from the repository root, as the README runs recipes.

    `--rdzv_backend c10d`: accelerate passes its own default (static, on a fixed port 29500) to torchrun, which
    would override the environment's; a one-process config ignores it.
    """
    command = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        config_file,
        "--rdzv_backend",
        "c10d",
        recipe,
        *args,
    ]
    run = subprocess.run(command, env=environment(), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"accelerate launch failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    return run
