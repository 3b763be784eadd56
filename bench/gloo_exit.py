"""How often a 2-process gloo job aborts at exit, for three ways of ending it, run interleaved on the same machine.

The job is the worst case: a DDP model, then all-gathers, then the end of the script at once. Its endings:
`exit` (nothing), `destroy` (`torch.distributed.destroy_process_group`, which does not free a group that DDP
holds) and `settle` (`settle_gloo_workers` first, as `SeqVCRTrainer.end` and the recipes do). An aborted rank
exits with SIGABRT after all its work, so torchrun reports the run as failed. Prints failures per ending.

    python bench/gloo_exit.py [--runs 50]   # 3 launches of ~4.5 s per run on 2 cores: ~12 minutes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from timing import load_average  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from hf_seqvcr.distributed import settle_gloo_workers  # noqa: E402
from launch import environment  # noqa: E402  (the test suite's loopback settings for torchrun)

ENDINGS = ("exit", "destroy", "settle")


def job(ending: str) -> None:
    """One rank of the job (run under torchrun)."""
    dist.init_process_group("gloo")
    model = DistributedDataParallel(torch.nn.Linear(4, 4))
    model(torch.ones(2, 4)).sum().backward()
    for _ in range(5):
        chunks = [torch.empty(1000) for _ in range(dist.get_world_size())]
        dist.all_gather(chunks, torch.ones(1000))
    if ending == "settle":
        settle_gloo_workers()
    if ending in ("destroy", "settle"):
        dist.destroy_process_group()


def launch(ending: str) -> bool:
    """Runs the job on 2 processes; True when every rank exited 0."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", __file__, "--job", ending]
    return subprocess.run(command, env=environment(), capture_output=True, timeout=300).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per ending (default 50)")
    parser.add_argument("--job", choices=ENDINGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(args.job)
    print(f"torch {torch.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {load_average()}")
    failures = dict.fromkeys(ENDINGS, 0)
    for _ in range(args.runs):
        for ending in ENDINGS:  # interleaved: each ending sees the same load
            failures[ending] += not launch(ending)
    for ending, failed in failures.items():
        print(f"{ending:8} {failed:3d} of {args.runs} runs aborted at exit")
    print(f"load after: {load_average()}")


if __name__ == "__main__":
    main()
