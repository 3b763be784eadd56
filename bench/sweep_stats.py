"""The statistics of the sweep's tables, as pure functions (tested in tests/test_sweep_stats.py).

Kept apart from sweep.py so they can be checked on made-up numbers in milliseconds and reused without torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1); the std of a single value is NaN, not 0, so it cannot pass for
    a tight result."""
    if not values:
        raise ValueError("mean_std of no values")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def format_mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """'18.5 ± 3.2' (percent by default); one value prints alone, so a lone seed is visible as such."""
    mean, std = mean_std(values)
    if math.isnan(std):
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def steps_to(steps: Sequence[int], values: Sequence[float], threshold: float) -> int | None:
    """The first evaluated step whose value reaches `threshold`, None if none does (the curve never got there).

    This is the step of the first evaluation at or above it, so it is exact only to the evaluation interval.
    """
    if len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps for {len(values)} values")
    for step, value in zip(steps, values, strict=True):
        if value >= threshold:
            return step
    return None


def best_point(steps: Sequence[int], values: Sequence[float]) -> tuple[float, int]:
    """The best value of a curve and the first step that reached it."""
    if not steps or len(steps) != len(values):
        raise ValueError(f"{len(steps)} steps for {len(values)} values")
    best = max(values)
    return best, steps[list(values).index(best)]


def plateaued(steps: Sequence[int], values: Sequence[float], share: float = 0.25) -> bool:
    """True when the curve's best came at or before the last `share` of the run began: no improvement for that
    long (issue 21's stopping rule: "not improved for a quarter of the run"). Steps count from 0."""
    return best_point(steps, values)[1] <= (1 - share) * steps[-1]


def paired_bootstrap_diff(
    a: Sequence[Sequence[float]],
    b: Sequence[Sequence[float]],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of a − b and a percentile confidence interval, resampling seeds and then test rows within each seed.

    `a[s][i]` and `b[s][i]` are the scores (e.g. 1/0 exact match) of two methods on test row i of seed s: the same
    rows, so each resample draws the same row indices for both (paired) and only the difference varies. Seeds
    are resampled too (two-level bootstrap) because seed-to-seed variation, not only the finite test set, is what
    a claim has to survive. With 3 seeds the seed level has only 10 distinct draws: the interval is coarse, and
    honest about it.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise ValueError(f"a and b must be (seeds × rows) with equal shapes, got {np.shape(a)} and {np.shape(b)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diff = a - b
    rng = np.random.default_rng(seed)
    seeds, rows = diff.shape
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // (seeds * rows))  # bounded memory: index arrays of ~2M entries at a time
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        pick_seed = rng.integers(0, seeds, size=(n, seeds, 1))
        pick_row = rng.integers(0, rows, size=(n, seeds, rows))
        means[start : start + n] = diff[pick_seed, pick_row].mean(axis=(1, 2))
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(diff.mean()), float(low), float(high)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on ranks, ties given their average rank); NaN when either side is
    constant, since no ordering can then be tracked."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"spearman needs two sequences of equal length >= 2, got {len(x)} and {len(y)}")

    def ranks(values: Sequence[float]) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values), dtype=float)
        for value in np.unique(values):  # ties: the mean of the ranks they span
            ranked[values == value] = ranked[values == value].mean()
        return ranked

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])
