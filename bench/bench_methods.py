"""The paper's five methods side by side: vanilla, CoT, Pause(2), Seq-VCR and Seq-VCR + Pause(2) trained on the same
multiplication data with the same model, steps, learning rate and seed, then scored on the same test split.

Every method goes through the real recipe pipeline (`recipes/multiplication.py`, one process each, so one run
cannot leak state into the next); the data is built once and shared with `--dataset_name`. Afterwards
`seqvcr-diagnose` measures the per-layer matrix entropy of all checkpoints in one call (docs/method.md §6) and draws
`<output-dir>/diagnose/entropy.png`. The table gives exact match and digit accuracy from each run's
results.json, the entropy averaged over layers (and its minimum, the collapse), and the time of each run.

    python bench/bench_methods.py                           # CPU: 2×2, tiny model from scratch, ~15-20 min in all
    python bench/bench_methods.py --methods vanilla cot     # a subset
    python bench/bench_methods.py --gpu --digits 4          # GPU: GPT-2-small shape, 808k rows, one epoch
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
from pathlib import Path

import yaml

from data_builders import build_once
from hf_seqvcr.losses import MULTIPLICATION_LAMBDAS
from hf_seqvcr.methods import METHODS
from recipe_runs import run_recipe  # bench/ is on sys.path when run as a script

# Settings a method run shares; --gpu swaps the CPU set for one shaped like the paper's (docs/method.md §2, §8).
CPU_SETTING = dict(
    digits=2,
    train_size=6000,
    eval_size=200,
    steps=800,
    preset="tiny",
    lr=1e-3,
    batch_size=32,
    proj_dim=256,
    threads=1,
    output_dir="outputs/bench-methods",
)
GPU_SETTING = dict(
    digits=5,
    train_size=808000,
    eval_size=1000,
    epochs=1,
    preset="gpt2-small",
    lr=1e-4,
    batch_size=32,
    proj_dim=2048,
    threads=None,
    output_dir="outputs/bench-methods-gpu",
)


def _defaults(key: str) -> str:
    return f" (default {CPU_SETTING.get(key)}; with --gpu {GPU_SETTING.get(key)})"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="the setting for a lent GPU: GPT-2-small shape, the paper's 808k training rows, one epoch, bf16",
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to train")
    parser.add_argument("--digits", type=int, help="k for k×k multiplication" + _defaults("digits"))
    parser.add_argument("--train-size", type=int, help="training rows (all are used)" + _defaults("train_size"))
    parser.add_argument(
        "--eval-size", type=int, help="validation and test rows each; the test split is scored" + _defaults("eval_size")
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="optimizer steps per method (the CPU budget)" + _defaults("steps"))
    budget.add_argument("--epochs", type=float, help="epochs per method, instead of --steps" + _defaults("epochs"))
    parser.add_argument(
        "--preset", choices=("tiny", "gpt2-small"), help="from-scratch model shape" + _defaults("preset")
    )
    parser.add_argument("--lr", type=float, help="peak learning rate (linear decay, 10%% warmup)" + _defaults("lr"))
    parser.add_argument(
        "--batch-size",
        type=int,
        help="per-device train batch (also the Seq-VCR covariance batch)" + _defaults("batch_size"),
    )
    parser.add_argument("--proj-dim", type=int, help="Seq-VCR projection width d (paper: 2048)" + _defaults("proj_dim"))
    parser.add_argument("--seed", type=int, default=0, help="data and training seed, the same for every method")
    parser.add_argument(
        "--threads",
        type=int,
        help="OMP/torch threads per run, 1 because on 2 shared cores a 2-thread team stalls; "
        "None = torch's default" + _defaults("threads"),
    )
    parser.add_argument("--entropy-examples", type=int, default=200, help="test rows the entropy is measured on")
    parser.add_argument(
        "--output-dir", type=Path, help="data, one folder per method, diagnose/, config.yaml" + _defaults("output_dir")
    )
    args = parser.parse_args(argv)
    setting = GPU_SETTING if args.gpu else CPU_SETTING
    if args.steps is None and args.epochs is None:
        args.steps, args.epochs = setting.get("steps"), setting.get("epochs")
    for key, value in setting.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    args.output_dir = Path(args.output_dir)
    return args


def build_data(args: argparse.Namespace) -> Path:
    """Build the k×k data once; a rerun with the same options reuses it, other options are refused."""
    options = [
        f"--digits={args.digits}",
        f"--train-size={args.train_size}",
        f"--validation-size={args.eval_size}",
        f"--test-size={args.eval_size}",
        f"--seed={args.seed}",
    ]
    try:
        return build_once(shlex.join(["multiplication", *options]), args.output_dir / "dataset")
    except FileExistsError as error:
        raise SystemExit(f"{error}; pass another --output-dir") from None


def write_config(args: argparse.Namespace, data: Path) -> Path:
    """The recipe settings every method shares, as a YAML next to the runs (the exact record of the budget)."""
    config = dict(
        dataset_name=str(data),
        model_config=args.preset,
        seed=args.seed,
        data_seed=args.seed,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=args.lr,
        warmup_steps=0.1,
        seqvcr_lambda_var=MULTIPLICATION_LAMBDAS.var,
        seqvcr_lambda_cov=MULTIPLICATION_LAMBDAS.cov,
        seqvcr_proj_dim=args.proj_dim,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        disable_tqdm=True,
        bf16=args.gpu,
    )
    if args.steps is not None:
        config["max_steps"] = args.steps
    else:
        config["num_train_epochs"] = args.epochs
    path = args.output_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train(method: str, config: Path, args: argparse.Namespace) -> dict:
    """One recipe run in its own process; its results.json plus the wall time of the whole run."""
    return run_recipe(
        "multiplication",
        config,
        method,
        args.output_dir / method,
        args.output_dir / f"{method}.log",
        threads=args.threads,
    )


def diagnose(args: argparse.Namespace, data: Path) -> dict[str, list[float]]:
    """Per-layer entropy of every checkpoint on the test split, one `seqvcr-diagnose` call; also draws the plot."""
    from hf_seqvcr.scripts.diagnose import main as run_diagnose

    out = args.output_dir / "diagnose"
    run_diagnose(
        [
            "--checkpoints",
            *(str(args.output_dir / m) for m in args.methods),
            "--labels",
            *args.methods,
            "--dataset",
            str(data),
            "--split",
            "test",
            "--num-examples",
            str(args.entropy_examples),
            "--output-dir",
            str(out),
        ]
    )
    summary = json.loads((out / "entropy.json").read_text())
    return {entry["label"]: entry["entropy"] for entry in summary["checkpoints"]}


def table(results: dict[str, dict], entropy: dict[str, list[float]]) -> str:
    """Markdown table: one row per method."""
    lines = [
        "| method | exact match | digit accuracy | mean layer entropy (nats) | min layer entropy | train time "
        "| wall (train + test + save) |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, r in results.items():
        layers = entropy[method]
        lines.append(
            f"| {method} | {r['test_exact_match']:.1%} | {r['test_digit_accuracy']:.1%} | "
            f"{statistics.mean(layers):.2f} | {min(layers):.2f} | {r['train_runtime']:.0f} s | "
            f"{r['wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    data = build_data(args)
    config = write_config(args, data)
    results = {method: train(method, config, args) for method in args.methods}
    report = table(results, diagnose(args, data))
    (args.output_dir / "table.md").write_text(report + "\n")
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"\n{report}\n\nload average {', '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"plot: {args.output_dir / 'diagnose' / 'entropy.png'}"
    )


if __name__ == "__main__":
    main()
