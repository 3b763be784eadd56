"""Interleaved timing for a shared CPU: variants alternate round by round, so each sees the same load.

Absolute times on a busy machine drift by tens of percent between minutes; a ratio taken within one round (the
variants ran seconds apart) drifts far less, so ratios are medians of per-round ratios, not ratios of medians.
By default the clock is the process's CPU time on one thread: when other jobs take the core away, our wall time
grows (we saw a generation call take 32 s then 18 s) but the CPU time it needed does not (17.7 s, 17.0 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Mapping

import torch

Clock = Callable[[], float]
CLOCKS: dict[str, Clock] = {"cpu": time.process_time, "wall": time.perf_counter}


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on 2 cores shared with another busy job, a 2-thread OpenMP team stalls "
        "whenever that job holds a core; we measured GPT-2-small steps 1.6× slower with 2 threads than with 1)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: process CPU time (default; with one thread, the time it actually ran), wall: elapsed time",
    )


def apply_timing_arguments(args: argparse.Namespace) -> Clock:
    """Set the thread count and return the chosen clock."""
    torch.set_num_threads(args.threads)
    return CLOCKS[args.clock]


def interleaved(
    variants: Mapping[str, Callable[[], object]], repeats: int, clock: Clock = time.process_time
) -> dict[str, list[float]]:
    """Seconds by `clock` of each call of each variant over `repeats` rounds; warm the variants up first.

    Each round starts one variant later than the previous (ABC, BCA, CAB…), so none always runs first after a
    switch or always last when another job starts.
    """
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            variants[name]()
            times[name].append(clock() - start)
    return times


def median(seconds: list[float]) -> float:
    return statistics.median(seconds)


def paired_ratio(numerator: list[float], denominator: list[float]) -> tuple[float, float, float]:
    """Median, min and max over rounds of numerator/denominator; the spread shows how much the load moved."""
    ratios = [n / d for n, d in zip(numerator, denominator, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def load_average() -> str:
    """The 1/5/15-minute load averages: how busy the shared machine was around the measurement."""
    return ", ".join(f"{load:.1f}" for load in os.getloadavg()) + " (1/5/15 min)"


def machine_note(clock: str) -> str:
    """What the numbers were measured on and with which clock, for the results table."""
    return (
        f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch thread(s), {clock} clock, "
        f"load average {load_average()}"
    )
