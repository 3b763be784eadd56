"""The sweep's statistics on made-up numbers: mean ± std, steps to a threshold, the paired bootstrap CI."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from sweep_stats import (
    best_point,
    format_mean_std,
    mean_std,
    paired_bootstrap_diff,
    plateaued,
    spearman,
    steps_to,
)


def test_mean_std_uses_the_sample_std_and_refuses_to_call_one_value_tight():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert math.isnan(mean_std([0.5])[1])
    assert format_mean_std([0.1, 0.2, 0.3]) == "20.0 ± 10.0" and format_mean_std([0.185]) == "18.5"
    with pytest.raises(ValueError):
        mean_std([])


def test_steps_to_is_the_first_evaluation_at_or_above_the_threshold():
    steps, em = [100, 200, 300, 400], [0.0, 0.12, 0.08, 0.5]
    assert steps_to(steps, em, 0.1) == 200 and steps_to(steps, em, 0.5) == 400
    assert steps_to(steps, em, 0.9) is None
    with pytest.raises(ValueError):
        steps_to([100], [0.1, 0.2], 0.1)


def test_best_point_is_the_first_step_at_the_maximum_and_a_plateau_is_a_quarter_without_gain():
    steps = [100, 200, 300, 400]
    assert best_point(steps, [0.1, 0.5, 0.5, 0.4]) == (0.5, 200)
    assert plateaued(steps, [0.1, 0.5, 0.5, 0.4])  # best at 200 <= 300: no gain over the last quarter
    assert plateaued(steps, [0.1, 0.2, 0.5, 0.5])  # best first reached at 300 = 3/4 of the run: still a plateau
    assert not plateaued(steps, [0.1, 0.2, 0.3, 0.4])  # still rising at the end
    with pytest.raises(ValueError):
        best_point([], [])


def test_paired_bootstrap_brackets_the_difference_and_sees_pairing():
    a = [[1, 1, 0, 1] * 50, [1, 0, 1, 1] * 50, [1, 1, 1, 0] * 50]  # 75 % on 200 rows, 3 seeds
    b = [[0, 1, 0, 0] * 50, [0, 0, 1, 0] * 50, [0, 1, 0, 0] * 50]  # 25 %
    mean, low, high = paired_bootstrap_diff(a, b, resamples=2000)
    assert mean == pytest.approx(0.5) and 0.4 < low < 0.5 < high < 0.6
    same = paired_bootstrap_diff(a, a, resamples=200)
    assert same == (0.0, 0.0, 0.0)  # identical methods: no spread at all, because rows are paired
    with pytest.raises(ValueError):
        paired_bootstrap_diff([[1, 0]], [[1, 0, 1]])


def test_spearman_is_pearson_on_average_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 400]) == pytest.approx(1.0)  # monotone, not linear: still 1
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties: x ranks (0, 1.5, 1.5, 3), y ranks (0, 1, 2, 3) -> Pearson of those, worked by hand: 0.9487
    assert spearman([1, 2, 2, 5], [1, 2, 3, 4]) == pytest.approx(3 / 10**0.5, abs=1e-4)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        spearman([1], [1])


def test_sweep_plans_resolve_to_unique_runs_with_the_method_md_lambdas():
    from sweep import QUEUE, Run, resolve_plans

    runs = resolve_plans(["queue"])
    assert len({r.run_id for r in runs}) == len(runs) and len(runs) == len(resolve_plans(list(QUEUE)))
    assert {r.resolved_lambdas for r in runs if r.task.startswith("mul") and not r.lambdas} == {(1.0, 0.004)}
    assert {r.resolved_lambdas for r in runs if r.task.startswith(("arith", "lis"))} == {(0.1, 0.5)}
    assert resolve_plans(["headline:0", "headline"])[:4] == [
        Run("mul2", m, 0) for m in ("vanilla", "pause", "seqvcr", "seqvcr_pause")
    ]
    with pytest.raises(ValueError):
        Run("mul2", "vanilla", 0, lambdas=(1.0, 0.1))  # a λ variant without the regularizer
