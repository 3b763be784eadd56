"""bench/sweep.py end to end on its smoke plan: two workers share a root, every run trains once, a rerun trains
nothing, and the table and plot read what finished. The sweep is the evidence behind the README's verdict, so a
change that breaks it must fail here, not in a night's run."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SWEEP = Path(__file__).resolve().parents[1] / "bench" / "sweep.py"


def sweep(root: Path, *args: str, background: bool = False):
    command = [sys.executable, str(SWEEP), "--root", str(root), *args]
    if background:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_two_workers_share_the_smoke_plan_and_a_rerun_trains_nothing(tmp_path):
    workers = [sweep(tmp_path, "run", "--plan", "smoke", background=True) for _ in range(2)]
    logs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], logs
    results = sorted(tmp_path.glob("*/result.json"))
    assert [path.parent.name.split("-")[2] for path in results] == ["seqvcr_pause", "vanilla"]
    started = [line for log in logs for line in log.splitlines() if "/2) mul2-" in line]
    assert len(started) == 2, logs  # each run trained by exactly one worker

    result = json.loads(results[0].read_text())
    assert result["lambdas"] == [1.0, 0.004] and len(result["correct"]) == 200  # every test row, for the bootstrap
    assert result["curve"][-1]["step"] == 20 and len(result["entropy"]) == 2  # embeddings + 1 layer
    assert result["recipe_config"]["seed"] == result["recipe_config"]["data_seed"] == 0

    before = {path: path.stat().st_mtime_ns for path in results}
    rerun = sweep(tmp_path, "run", "--plan", "smoke")
    assert "/2)" not in rerun and {path: path.stat().st_mtime_ns for path in results} == before

    table = sweep(tmp_path, "table", "--results", str(tmp_path))
    assert "| vanilla | 0 |" in table and "| seqvcr_pause | 0 |" in table and "| seqvcr_pause − vanilla |" in table
    overlap = sweep(tmp_path, "overlap", "--results", str(tmp_path))
    pooled = [line for line in overlap.splitlines() if "| vanilla | 0 |" in line]
    assert len(pooled) == 1 and sum(map(int, re.findall(r"\((\d+) rows\)", pooled[0]))) == 200  # every test row
    sweep(tmp_path, "plot", "--results", str(tmp_path))
    assert [p.name for p in (tmp_path / "plots").glob("*.png")] == ["mul2-L1d32h2-lr0.001-s20-b32-w2.png"]


def see_it_config(makefile_flags: str = "") -> dict:
    """small_scale.yaml with a Makefile flag variable's `--key value` pairs applied, as the recipe parses them."""
    import shlex

    import yaml

    config = yaml.safe_load((SWEEP.parents[1] / "recipes" / "multiplication" / "small_scale.yaml").read_text())
    if makefile_flags:
        makefile = (SWEEP.parents[1] / "Makefile").read_text()
        words = shlex.split(makefile.split(f"{makefile_flags} := ", 1)[1].splitlines()[0])
        config |= {
            key.removeprefix("--"): yaml.safe_load(value) for key, value in zip(words[::2], words[1::2], strict=True)
        }
    return config


@pytest.mark.parametrize(
    ("makefile_flags", "steps", "eval_steps"),
    [("", 4000, 100), ("SEE_IT_LONG_FLAGS", 16000, 200)],
    ids=["see-it", "see-it-long"],
)
def test_make_see_it_trains_seed_0_of_the_sweeps_headline_cell(makefile_flags, steps, eval_steps):
    """`make see-it` (`make see-it-long`) promises the numbers of seed 0 in bench/RESULTS.md at 4,000 (16,000)
    steps: the YAML (with the Makefile's flags) must train exactly that run of the sweep."""
    import shlex

    sys.path.insert(0, str(SWEEP.parent))
    from sweep import TASKS, Run, builder_options, recipe_config

    config = see_it_config(makefile_flags)
    run = Run("mul2", "seqvcr_pause", 0, steps=steps, eval_steps=eval_steps)
    expected = recipe_config(run, Path("unused"), "tiny")
    for key in set(expected) - {"dataset_name", "save_strategy", "report_to", "disable_tqdm", "bf16"}:
        assert config[key] == expected[key], key
    builder, *words = shlex.split(config["build_dataset"])
    assert [builder, *(f"{a}={b}" for a, b in zip(words[::2], words[1::2], strict=True))] == [
        TASKS["mul2"].builder,
        *builder_options(run),
    ]


def test_the_plateau_plans_put_the_headline_contrast_first_and_share_the_headline_data():
    """Issue 21 §1: runs still queued when a sitting ends are the least important ones, and every plateau run is
    the headline cell (same data seeds, lr, batch, warmup, λ) at a longer budget, so it pairs with the 4,000-step
    runs."""
    sys.path.insert(0, str(SWEEP.parent))
    from sweep import SEEDS, Run, resolve_plans

    runs = resolve_plans(["plateau", "plateau32k"])
    assert [(r.method, r.seed) for r in runs[:6]] == [(m, s) for s in SEEDS for m in ("vanilla", "seqvcr_pause")]
    assert {r.method for r in runs[6:15]} == {"pause", "seqvcr", "cot"} and {r.steps for r in runs[:15]} == {16000}
    assert {(r.method, r.steps) for r in runs[15:]} == {(m, 32000) for m in ("vanilla", "seqvcr_pause")}
    longer = resolve_plans(["plateau64k"])
    assert [(r.method, r.seed, r.steps) for r in longer] == [("vanilla", s, 64000) for s in SEEDS]
    for run in runs + longer:
        headline = Run("mul2", run.method, run.seed)
        assert dataclasses.replace(headline, steps=run.steps, eval_steps=run.eval_steps) == run
        assert run.eval_steps * 80 == run.steps  # 80 curve points per run


def test_issue_21_variants_keep_old_run_ids_and_reach_the_recipe_config():
    """A new field left at its default changes neither the run id (collected results still count) nor the recipe's
    config; a set one does both, and a variant the method cannot have is refused before any training."""
    sys.path.insert(0, str(SWEEP.parent))
    from sweep import Run, recipe_config, resolve_plans, run_of

    default = Run("mul2", "seqvcr_pause", 0)
    assert default.run_id == "mul2-L4d128-seqvcr_pause-lr0.001-s4000-b32-w100-p256-seed0"  # as in bench/sweep_results
    assert Run("mul2", "seqvcr_pause", 0, lambdas=(3.0, 0.004)).cell.startswith("mul2-L4d128-seqvcr_pause-lam3_0.004-")
    base = recipe_config(default, Path("d"), "tiny")
    variant = Run(
        "mul2", "seqvcr_pause", 0, pauses=4, distinct_pauses=True, seqvcr_layers=(1, 2), covariance="batch_positions"
    )
    assert "-pz4-distinct-reg1_2-covbatch_positions-" in variant.run_id
    assert recipe_config(variant, Path("d"), "tiny") == base | {
        "num_pause_tokens": 4,
        "distinct_pause_embeddings": True,
        "seqvcr_layers": [1, 2],
        "seqvcr_covariance": "batch_positions",
    }
    assert run_of({"run": dataclasses.asdict(variant)}) == variant  # what the table reads back from result.json
    for bad in (
        dict(method="vanilla", pauses=4),
        dict(method="seqvcr_pause", pauses=2),
        dict(method="pause", seqvcr_layers=(2,)),
        dict(method="seqvcr", distinct_pauses=True),
    ):
        with pytest.raises(ValueError):
            Run("mul2", seed=0, **bad)
    runs = resolve_plans(["queue21"])
    assert len({r.run_id for r in runs}) == len(runs) and runs[:15] == resolve_plans(["plateau"])


def test_pause_grid_places_each_run_by_pause_count_and_embedding_and_leaves_other_variants_out():
    """The §2 pause table: 0 is the seqvcr arm, 2 shared the default; a λ variant of seqvcr or a layer variant of
    seqvcr_pause is another ablation and must not land in a default's cell."""
    sys.path.insert(0, str(SWEEP.parent))
    from sweep import Run, pause_grid

    def runs(exact_matches: list[float], **run) -> list[dict]:
        return [
            {"run": dataclasses.asdict(Run("mul2", seed=seed, steps=8000, **run)), "final": {"exact_match": em}}
            for seed, em in enumerate(exact_matches)
        ]

    cells = {
        "seqvcr": runs([0.5, 0.6], method="seqvcr"),
        "seqvcr λ": runs([0.7], method="seqvcr", lambdas=(3.0, 0.004)),
        "default": runs([0.4], method="seqvcr_pause"),
        "distinct": runs([0.3], method="seqvcr_pause", distinct_pauses=True),
        "pz8": runs([0.2], method="seqvcr_pause", pauses=8),
        "middle layer": runs([0.9], method="seqvcr_pause", seqvcr_layers=(2,)),
        "vanilla": runs([0.1], method="vanilla"),
    }
    assert pause_grid(cells).splitlines()[2:] == [
        "| 0 | 55.0 ± 7.1 (2) | — |",
        "| 2 | 40.0 (1) | 30.0 (1) |",
        "| 8 | 20.0 (1) | — |",
    ]
    assert pause_grid({k: cells[k] for k in ("seqvcr", "default", "middle layer")}) is None  # no pause variant


def test_lambda_search_chooses_on_validation_not_test_and_keeps_other_ablations_out():
    """The λ row marked chosen is the one with the best final validation exact match over the seeds all λs have,
    even when another λ tests higher (choosing on test would tune on the number we report); runs that vary more
    than λ are not trials."""
    sys.path.insert(0, str(SWEEP.parent))
    from sweep import Run, lambda_search

    def runs(validation: float, test: float, seed: int = 0, **run) -> list[dict]:
        return [
            {
                "run": dataclasses.asdict(Run("mul2", seed=seed, **run)),
                "curve": [{"step": 100, "exact_match": 0.0}, {"step": 4000, "exact_match": validation}],
                "final": {"exact_match": test},
            }
        ]

    cells = {  # the default's seed 1 validates best of all, but the variant has not run seed 1 yet
        "default": runs(0.2, 0.3, method="seqvcr") + runs(0.9, 0.3, seed=1, method="seqvcr"),
        "λ variant": runs(0.4, 0.1, method="seqvcr", lambdas=(3.0, 0.004)),
        "λ and layers": runs(0.9, 0.9, method="seqvcr", lambdas=(0.1, 0.5), seqvcr_layers=(2,)),
        "vanilla": runs(0.5, 0.5, method="vanilla"),
    }
    assert lambda_search(cells).splitlines()[2:] == [
        "| seqvcr | (1, 0.004) | 20.0 | 30.0 ± 0.0 | 2 |",
        "| seqvcr | (3, 0.004) **chosen** | 40.0 | 10.0 | 1 |",
    ]
    assert lambda_search({"default": cells["default"], "vanilla": cells["vanilla"]}) is None  # no search ran


def test_the_cpu_estimate_uses_the_same_shape_first_then_scales_another_shape_by_its_weights():
    sys.path.insert(0, str(SWEEP.parent))
    from sweep import Run, estimate_cpu_s

    def done(run: Run, cpu_s: float) -> dict:
        return {run.run_id: {"run": dataclasses.asdict(run), "cpu_s": cpu_s}}

    small = Run("mul3", "vanilla", 0)  # 4 × 128, 4,000 steps
    wide = Run("mul3", "vanilla", 0, layers=6, width=256, steps=8000)
    assert estimate_cpu_s(wide, done(small, 400.0)) == 400.0 / 4000 * 6 * 8000 + 15  # 6× the weights per step
    both = done(small, 400.0) | done(dataclasses.replace(wide, seed=1), 1000.0)
    assert estimate_cpu_s(wide, both) == 1000.0 + 15  # a measured run of the same shape wins
    assert estimate_cpu_s(wide, done(Run("mul2", "vanilla", 0), 400.0)) != estimate_cpu_s(wide, done(small, 400.0))


def test_commuted_in_training_flags_every_test_row_whose_b_times_a_the_largest_split_trains_on(tmp_path):
    """mul2all trains on every pair the held-out rows leave, so b × a is a training row exactly when it is not
    held out; mul2 draws 6,000 of those 7,700, so it flags a subset of the same test rows."""
    sys.path.insert(0, str(SWEEP.parent))
    from data_builders import load_task_dataset
    from data_builders.multiplication import parse_operands
    from sweep import Run, commuted_in_training, dataset

    everything = dataset(Run("mul2all", "vanilla", 0), tmp_path)
    splits = load_task_dataset(everything)
    test = [parse_operands(q) for q in splits["test"]["question"]]
    held_out = {*test, *map(parse_operands, splits["validation"]["question"])}
    flags = commuted_in_training(everything, len(test))
    assert flags == [(b, a) not in held_out for a, b in test]

    drawn = commuted_in_training(dataset(Run("mul2", "vanilla", 0), tmp_path), len(test))
    assert sum(drawn) == 132 < sum(flags) == 181 and all(f for f, d in zip(flags, drawn, strict=True) if d)
