"""Looped transformers at CPU scale (Saunshi et al., ICLR 2025, Table 1): does (1⊗L) close the iso-param → iso-FLOP gap?

Trains the four p-hop arms of recipes/phop/ — iso_param (1⊗1), demo (1⊗4), iso_flop (4⊗1) and loopreg (4⊗1 with
the looping-inspired regularizer, λ=10, block 1) — over training seeds 0,1,2, each through the real recipe
(`recipes/phop.py --config recipes/phop/<arm>.yaml`, one process per run). The arms differ only in `looped` and
`loopreg_*` (checked before anything runs); the data is built once (data seed 0) and shared with `--dataset_name`;
`--steps` and `--build` change the shared setting for every arm at once. A run whose results.json exists is
skipped, so an interrupted bench resumes where it stopped.

Table: exact match (mean ± std over seeds), parameters, effective depth, train CPU time; the paper's
%Gap = (acc(1⊗4) − acc(1⊗1)) / (acc(4⊗1) − acc(1⊗1)) per seed and over seeds with a bootstrap; the mean cosine
between adjacent layers' weights of the regularized model (logged and on its saved weights) and, as the control,
of the unregularized (4⊗1) model's saved weights.

    python bench/bench_looped.py                         # 4 arms × seeds 0,1,2, the recipes' 600 steps
    python bench/bench_looped.py --steps 50 --seeds 0 --output-dir outputs/bench-looped-pilot   # timing pilot
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "phop.py"
CONFIGS = ROOT / "recipes" / "phop"
ARMS = {"iso_param": "(1⊗1)", "demo": "(1⊗4)", "iso_flop": "(4⊗1)", "loopreg": "(4⊗1)+reg"}
ARM_KEYS = {"looped", "loopreg_lambda", "loopreg_block"}  # the only settings the arms may differ in
BENCH_FLAGS = ["--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true"]  # no checkpoints, no logs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (init, data order)")
    parser.add_argument("--steps", type=int, help="max_steps for every arm (default: the recipes' own)")
    parser.add_argument("--build", help="phop builder arguments for every arm (default: the recipes' build_dataset)")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the data draw, fixed across runs")
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads per run")
    parser.add_argument("--bootstrap", type=int, default=10000, help="bootstrap resamples of the seeds for %%Gap")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/bench-looped"))
    return parser.parse_args(argv)


def shared_setting(arms: list[str]) -> dict:
    """The recipes' common settings; refuses arms that differ in anything but the looping and its regularizer."""
    configs = {arm: yaml.safe_load((CONFIGS / f"{arm}.yaml").read_text()) for arm in ARMS}
    common = {k: v for k, v in configs["demo"].items() if k not in ARM_KEYS}
    for arm, config in configs.items():
        other = {k: v for k, v in config.items() if k not in ARM_KEYS}
        if other != common:
            diff = sorted(k for k in other.keys() | common.keys() if other.get(k) != common.get(k))
            raise SystemExit(
                f"recipes/phop/{arm}.yaml differs from demo.yaml in {diff}, not only in {sorted(ARM_KEYS)}"
            )
    return common


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def build_data(args: argparse.Namespace, build: str) -> Path:
    """The p-hop data, once; a rerun with the same builder arguments reuses it, other arguments are refused."""
    from data_builders import build_once

    assert shlex.split(build)[0] == "phop", build
    try:
        return build_once(f"{build} --seed={args.data_seed}", args.output_dir / "dataset")
    except FileExistsError as error:
        raise SystemExit(f"{error}; pass another --output-dir") from None


def majority_rate(data: Path) -> tuple[float, str]:
    """Share of the most frequent answer on the test split: what always guessing it scores."""
    from data_builders import load_task_dataset

    answers = Counter(load_task_dataset(data)["test"]["answer"])
    letter, count = answers.most_common(1)[0]
    return count / sum(answers.values()), letter


def train(arm: str, seed: int, data: Path, args: argparse.Namespace) -> dict:
    """One recipe run (skipped if finished); its results.json plus CPU and wall time and the load around it."""
    out = args.output_dir / f"{arm}-s{seed}"
    cost_file = out / "bench_cost.json"
    if (out / "results.json").is_file() and cost_file.is_file():
        print(f"{arm} seed {seed}: done, skipped", flush=True)
        return json.loads((out / "results.json").read_text()) | json.loads(cost_file.read_text())
    command = [
        sys.executable,
        str(RECIPE),
        "--config",
        str(CONFIGS / f"{arm}.yaml"),
        "--dataset_name",
        str(data),
        "--seed",
        str(seed),
        "--output_dir",
        str(out),
        "--overwrite_output_dir",
        "true",
        *BENCH_FLAGS,
    ]
    if args.steps is not None:
        command += ["--max_steps", str(args.steps)]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    out.mkdir(parents=True, exist_ok=True)
    print(f"[{time.strftime('%H:%M:%S')}] {arm} seed {seed}: {shlex.join(command)}", flush=True)
    cost = {"load_start": load_average()}
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    with open(out / "bench.log", "w") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cost |= {
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "wall_s": time.perf_counter() - start,
        "load_end": load_average(),
    }
    cost_file.write_text(json.dumps(cost, indent=2) + "\n")
    results = json.loads((out / "results.json").read_text())
    print(
        f"    exact match {results['test_exact_match']:.1%}, {cost['cpu_s']:.0f} CPU-s, "
        f"{cost['wall_s']:.0f} s wall, load {cost['load_end']}",
        flush=True,
    )
    return results | cost


def inspect(run_dir: Path) -> dict:
    """Parameters, effective depth and adjacent-layer cosine (block 1) of a saved model, plus the last logged cosine."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from hf_seqvcr import load_looped, loop_regularizer
    from hf_seqvcr.looped import LAYOUT_KEY, LoopLayout

    config = AutoConfig.from_pretrained(run_dir)
    layout = LoopLayout(**getattr(config, LAYOUT_KEY))
    info = {"params": None, "depth": layout.effective_layers, "unique_layers": layout.unique_layers}
    if layout.loops == 1:  # (k⊗1) is an ordinary k-layer model: load it unlooped so the regularizer can read it
        delattr(config, LAYOUT_KEY)
        model = AutoModelForCausalLM.from_pretrained(run_dir, config=config)
        if layout.unique_layers > 1:
            with torch.no_grad():
                cosine = loop_regularizer(model, block=1, lambda_reg=1.0).cosine
            info["cos_saved"] = statistics.mean(value.item() for value in cosine.values())
            info["cos_saved_groups"] = {group: round(value.item(), 4) for group, value in cosine.items()}
    else:
        model = load_looped(run_dir)
    info["params"] = sum(p.numel() for p in model.parameters())  # tied embedding/head counted once
    state = json.loads((run_dir / "trainer_state.json").read_text())
    logged = [entry for entry in state["log_history"] if any(k.startswith("loopreg_cos/") for k in entry)]
    if logged:
        last = logged[-1]
        info["cos_logged"] = statistics.mean(v for k, v in last.items() if k.startswith("loopreg_cos/"))
        info["cos_logged_step"] = last["step"]
    return info


def gap(iso_param: float, looped: float, iso_flop: float) -> float:
    """The paper's %Gap (Eq. 1) as a fraction: how much of the iso-param → iso-FLOP gap looping closes."""
    return (looped - iso_param) / (iso_flop - iso_param) if iso_flop != iso_param else float("nan")


def bootstrap_gap(acc: dict[str, list[float]], resamples: int) -> tuple[float, float, int]:
    """95 % percentile interval of %Gap of seed means, resampling each arm's seeds with replacement."""
    rng = random.Random(0)
    values, undefined = [], 0
    for _ in range(resamples):
        means = {
            arm: statistics.mean(rng.choices(acc[arm], k=len(acc[arm]))) for arm in ("iso_param", "demo", "iso_flop")
        }
        if means["iso_flop"] - means["iso_param"] <= 0:
            undefined += 1  # no gap to close in this resample
            continue
        values.append(gap(means["iso_param"], means["demo"], means["iso_flop"]))
    values.sort()
    if not values:
        return float("nan"), float("nan"), undefined
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1], undefined


def report(
    runs: dict[tuple[str, int], dict],
    info: dict[tuple[str, int], dict],
    args: argparse.Namespace,
    majority: tuple[float, str],
) -> str:
    def pm(values: list[float], fmt: str = "{:.1%}") -> str:
        return fmt.format(statistics.mean(values)) + (
            " ± " + fmt.format(statistics.stdev(values)) if len(values) > 1 else ""
        )

    lines = [
        "| arm | layout | exact match (mean ± std) | per seed | params | effective depth | train CPU-s / run "
        "| adjacent-layer cosine, saved weights | logged cosine, last 50-step log |",
        "|---|" * 1 + "---|" * 8,
    ]
    acc: dict[str, list[float]] = {}
    for arm in args.arms:
        seeds = [s for s in args.seeds if (arm, s) in runs]
        acc[arm] = [runs[arm, s]["test_exact_match"] for s in seeds]
        first = info[arm, seeds[0]]
        cos = [info[arm, s]["cos_saved"] for s in seeds if "cos_saved" in info[arm, s]]
        logged = [info[arm, s]["cos_logged"] for s in seeds if "cos_logged" in info[arm, s]]
        lines.append(
            f"| {arm} | {ARMS[arm]} | {pm(acc[arm])} | {' / '.join(f'{a:.1%}' for a in acc[arm])} | "
            f"{first['params']:,} | {first['depth']} | {pm([runs[arm, s]['cpu_s'] for s in seeds], '{:.0f}')} | "
            f"{pm(cos, '{:.3f}') if cos else '—'} | {pm(logged, '{:.3f}') if logged else '—'} |"
        )
    text = "\n".join(lines)
    text += f"\n\nMajority-class rate of the test answers (always answering '{majority[1]}'): {majority[0]:.1%}."
    if {"iso_param", "demo", "iso_flop"} <= acc.keys():
        per_seed = [
            gap(
                runs["iso_param", s]["test_exact_match"],
                runs["demo", s]["test_exact_match"],
                runs["iso_flop", s]["test_exact_match"],
            )
            for s in args.seeds
            if all((a, s) in runs for a in ("iso_param", "demo", "iso_flop"))
        ]
        mean_gap = gap(*(statistics.mean(acc[a]) for a in ("iso_param", "demo", "iso_flop")))
        low, high, undefined = bootstrap_gap(acc, args.bootstrap)
        text += (
            f"\n%Gap (1⊗4 between 1⊗1 and 4⊗1) of the seed means: {mean_gap:.0%}; per seed (paired by seed): "
            f"{', '.join(f'{g:.0%}' for g in per_seed)}; bootstrap 95 % interval over seeds: [{low:.0%}, "
            f"{high:.0%}] ({args.bootstrap} resamples, {undefined} without a gap left out)."
        )
    return text


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    setting = shared_setting(args.arms)
    build = args.build or setting["build_dataset"]
    load_start, started = load_average(), time.strftime("%Y-%m-%d %H:%M:%S %Z")
    data = build_data(args, build)
    majority = majority_rate(data)
    print(
        f"bench start {started}, load {load_start}; data: {build} --seed={args.data_seed}; steps "
        f"{args.steps or setting['max_steps']}; majority-class test rate {majority[0]:.1%}",
        flush=True,
    )
    runs = {(arm, seed): train(arm, seed, data, args) for seed in args.seeds for arm in args.arms}
    info = {key: inspect(args.output_dir / f"{key[0]}-s{key[1]}") for key in runs}
    load_end, ended = load_average(), time.strftime("%Y-%m-%d %H:%M:%S %Z")
    text = report(runs, info, args, majority)
    cpu = sum(r["cpu_s"] for r in runs.values())
    text += (
        f"\nData: `{build} --seed={args.data_seed}`; steps {args.steps or setting['max_steps']}, batch "
        f"{setting['per_device_train_batch_size']}, lr {setting['learning_rate']} {setting['lr_scheduler_type']}, "
        f"{args.threads} thread(s). Started {started} (load {load_start}), ended {ended} (load {load_end}); "
        f"{cpu / 60:.1f} CPU-min of training in all."
    )
    (args.output_dir / "table.md").write_text(text + "\n")
    (args.output_dir / "bench.json").write_text(
        json.dumps(
            {
                "runs": {f"{a}-s{s}": r | info[a, s] for (a, s), r in runs.items()},
                "load_start": load_start,
                "load_end": load_end,
                "started": started,
                "ended": ended,
                "majority_rate": majority[0],
            },
            indent=2,
        )
        + "\n"
    )
    print("\n" + text)


if __name__ == "__main__":
    main()
