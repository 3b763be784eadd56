"""Over-squashing at small scale (Barbero et al. 2024): train tiny models on counting at short lengths, then probe
them far beyond: does the last-token distance decay with length, do commas slow the decay, and does a Seq-VCR model
differ from a vanilla one trained on the same data, steps, lr and seed (only `--method` differs)?

Each run goes through the recipe pipeline (`hf_seqvcr.scripts.train`, one process each) from scratch on data built
once per seed; then `seqvcr-probe` measures both methods side by side twice: at the last digit (the paper's
Thm 4.2 pair) and at the answer position (`<eos>` appended, where the model reads its count), and scores exact
match on the `test_len<L>` splits. Prints a table with the machine load; writes `<out>/results.json`, `table.md`,
`summary.png` and the probe's own JSON and PNGs per seed.

    python bench/bench_oversquashing.py                    # llama (RoPE), vanilla vs seqvcr, seeds 0 1, ~20 min
    python bench/bench_oversquashing.py --arch gpt2 --seeds 0 --output-dir outputs/bench-oversquashing-gpt2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hf_seqvcr.scripts import probe  # noqa: E402
from hf_seqvcr.scripts.plotting import plot_lines  # noqa: E402

PREFIX = "count ones:"  # data_builders.counting's prefix for --style digits
# Both shaped like the recipes' `tiny` preset (4 layers, d=128); llama has RoPE (relative positions that decay, the
# paper's setting), gpt2 learned absolute positions, which stay untrained beyond the training lengths.
ARCHS = {
    "llama": {
        "model_type": "llama",
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
        "tie_word_embeddings": True,
    },
    "gpt2": {"model_type": "gpt2", "n_embd": 128, "n_layer": 4, "n_head": 4, "n_positions": 512},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n")[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--arch", choices=ARCHS, default="llama", help="model shape from scratch (default llama)")
    parser.add_argument("--methods", nargs="+", default=["vanilla", "seqvcr"], help="default vanilla seqvcr")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="data and training seeds (default 0 1)")
    parser.add_argument("--max-train-length", type=int, default=16, help="training lengths 1..N (default 16)")
    parser.add_argument(
        "--test-lengths",
        nargs="+",
        type=int,
        default=[8, 12, 16, 32, 64, 128],
        help="test_len<L> splits scored by exact match",
    )
    parser.add_argument("--bucket-size", type=int, default=100, help="rows per test_len<L> split")
    parser.add_argument("--probe-lengths", default="4:256:x2", help="seqvcr-probe --lengths (default 4:256:x2)")
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=500, help="optimizer steps per run (default 500)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--proj-dim", type=int, default=256, help="Seq-VCR projection width")
    parser.add_argument("--lambda-var", type=float, default=0.1, help="λ1 (paper, non-multiplication tasks: 0.1)")
    parser.add_argument("--lambda-cov", type=float, default=0.5, help="λ2 (paper, non-multiplication tasks: 0.5)")
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/bench-oversquashing"))
    return parser.parse_args(argv)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_logged(command: list[str], log: Path) -> float:
    """Run one process with one thread, its output to ``log``; seconds taken, or exit naming the log."""
    start = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with log.open("w") as handle:
        status = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    if status:
        raise SystemExit(f"{shlex.join(command)} failed (exit {status}); see {log}")
    return time.time() - start


def build_data(args: argparse.Namespace, seed: int, target: Path) -> None:
    if (target / "README.md").is_file():
        return
    run_logged(
        [
            sys.executable,
            "-m",
            "data_builders.counting",
            "--min-length",
            "1",
            "--max-length",
            str(args.max_train_length),
            "--test-lengths",
            *map(str, args.test_lengths),
            "--bucket-size",
            str(args.bucket_size),
            "--train-size",
            str(args.train_size),
            "--validation-size",
            "200",
            "--test-size",
            "200",
            "--seed",
            str(seed),
            "--output-dir",
            str(target),
        ],
        target.parent / f"data-seed{seed}.log",
    )


def train(args: argparse.Namespace, method: str, seed: int, data: Path, out: Path) -> dict:
    """One recipe run; every setting but --method is shared (the Seq-VCR ones are ignored by vanilla)."""
    if not (out / "results.json").is_file():
        run_logged(
            [
                sys.executable,
                "-c",
                "import sys; from hf_seqvcr.scripts.train import cli; cli(sys.argv[1:])",
                "--model_config",
                str(args.output_dir / f"{args.arch}.json"),
                "--method",
                method,
                "--dataset_name",
                str(data),
                "--seed",
                str(seed),
                "--max_steps",
                str(args.steps),
                "--per_device_train_batch_size",
                str(args.batch_size),
                "--learning_rate",
                str(args.lr),
                "--warmup_steps",
                str(args.steps // 10),
                "--seqvcr_proj_dim",
                str(args.proj_dim),
                "--seqvcr_lambda_var",
                str(args.lambda_var),
                "--seqvcr_lambda_cov",
                str(args.lambda_cov),
                "--seqvcr_covariance",
                "batch_positions",
                "--max_test_samples",
                "200",
                "--report_to",
                "none",
                "--save_strategy",
                "no",
                "--eval_strategy",
                "no",
                "--logging_steps",
                "50",
                "--disable_tqdm",
                "true",
                "--output_dir",
                str(out),
            ],
            out.parent / f"{out.name}.log",
        )
    return json.loads((out / "results.json").read_text())


def probe_runs(args: argparse.Namespace, runs: dict[str, Path], data: Path, out: Path, answer: bool) -> dict:
    argv = [
        "--checkpoints",
        *map(str, runs.values()),
        "--labels",
        *runs,
        "--lengths",
        args.probe_lengths,
        "--prefix",
        PREFIX,
        "--output-dir",
        str(out),
    ]
    argv += ["--answer-position", "--dataset", str(data)] if answer else []
    if not (out / "probe.json").is_file():
        probe.main(argv)
    return json.loads((out / "probe.json").read_text())


def table(results: dict) -> str:
    """Per probe position, variant and method, one value per seed: the fp32 log-log slope of the L∞ distance over all
    probe lengths and over the lengths beyond twice the training range (past the cliff at the training edge), the
    fp32 distance at the longest length, the first n whose fp32 distance is below the bf16 resolution, and the first
    n at which bf16 gives exactly 0; then exact match per length."""
    methods, seeds = results["methods"], results["seeds"]
    beyond = 2 * results["max_train_length"]
    lines = [
        f"| position | variant | method | fp32 slope, all n | fp32 slope, n ≥ {beyond} | fp32 L∞ at max n | "
        "first n: fp32 < bf16 res. | first n: bf16 = 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for position in ("last digit", "answer (eos)"):
        for variant in probe.VARIANTS:
            for method in methods:
                cells = [[] for _ in range(5)]
                for seed in seeds:
                    fp32 = _decay(results, seed, position, method, variant, "float32")
                    bf16 = _decay(results, seed, position, method, variant, "bfloat16")
                    points = sorted(
                        (
                            p
                            for p in results["probes"][str(seed)][position]["distances"]
                            if (p["label"], p["variant"], p["dtype"]) == (method, variant, "float32")
                        ),
                        key=lambda p: p["length"],
                    )
                    tail = [p for p in points if p["length"] >= beyond]
                    cells[0].append(_fmt(fp32["loglog_slope"]))
                    cells[1].append(_fmt(probe.loglog_slope([p["length"] for p in tail], [p["linf"] for p in tail])))
                    cells[2].append(f"{points[-1]['linf']:.1e}")
                    cells[3].append(str(fp32["first_below_bf16_resolution"] or "—"))
                    cells[4].append(str(bf16["first_zero"] or "—"))
                lines.append(f"| {position} | {variant} | {method} | " + " | ".join(", ".join(c) for c in cells) + " |")
    lines += [
        "",
        "| method | seed | " + " | ".join(f"EM n={n}" for n in results["test_lengths"]) + " | test EM |",
        "|---|---|" + "---|" * (len(results["test_lengths"]) + 1),
    ]
    for seed in seeds:
        report = results["probes"][str(seed)]["answer (eos)"]
        for checkpoint in report["checkpoints"]:
            scores = " | ".join(f"{a['exact_match']:.0%}" for a in checkpoint["accuracy"])
            test = results["runs"][str(seed)][checkpoint["label"]]["test_exact_match"]
            lines.append(f"| {checkpoint['label']} | {seed} | {scores} | {test:.0%} |")
    return "\n".join(lines)


def _decay(results: dict, seed: int, position: str, method: str, variant: str, dtype: str) -> dict:
    report = results["probes"][str(seed)][position]
    return next(d for d in report["decay"] if (d["label"], d["variant"], d["dtype"]) == (method, variant, dtype))


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def summary_plot(results: dict, path: Path) -> None:
    """fp32 L∞ distance at the answer position, geometric mean over seeds, per method and variant."""
    series, styles, x = {}, {}, None
    for index, method in enumerate(results["methods"]):
        for variant, style in (("ones", "-"), ("commas", "--"), ("random", ":")):
            curves = []
            for seed in results["seeds"]:
                points = sorted(
                    (
                        p
                        for p in results["probes"][str(seed)]["answer (eos)"]["distances"]
                        if (p["label"], p["variant"], p["dtype"]) == (method, variant, "float32")
                    ),
                    key=lambda p: p["length"],
                )
                x = [p["length"] for p in points]
                curves.append([p["linf"] for p in points])
            name = f"{method} {variant}"
            series[name] = [
                math.exp(sum(math.log(max(c[i], 1e-30)) for c in curves) / len(curves)) for i in range(len(x))
            ]
            styles[name] = {"color": f"C{index}", "linestyle": style}
    plot_lines(
        series,
        x=x,
        log_x=True,
        log_y=True,
        styles=styles,
        path=path,
        xlabel="n (digits)",
        ylabel="fp32 L∞ distance (geo. mean over seeds)",
        title=f"{results['arch']}: last-token distance at the answer position, trained on n ≤ "
        f"{results['max_train_length']}",
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1)  # the probes run in this process; on 2 shared cores a 2-thread team stalls
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"{args.arch}.json").write_text(json.dumps(ARCHS[args.arch]))
    results = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "arch": args.arch,
        "methods": args.methods,
        "seeds": args.seeds,
        "max_train_length": args.max_train_length,
        "test_lengths": args.test_lengths,
        "steps": args.steps,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "load_start": load(),
        "runs": {},
        "probes": {},
        "seconds": {},
    }
    print(f"load average at start: {results['load_start']}", flush=True)
    for seed in args.seeds:
        data = args.output_dir / f"data-seed{seed}"
        build_data(args, seed, data)
        runs = {method: args.output_dir / f"seed{seed}" / method for method in args.methods}
        results["runs"][str(seed)] = {}
        for method, out in runs.items():
            out.parent.mkdir(parents=True, exist_ok=True)
            start = time.time()
            scores = train(args, method, seed, data, out)
            results["runs"][str(seed)][method] = {k: scores[k] for k in ("test_exact_match", "train_runtime")}
            print(
                f"seed {seed} {method}: test exact match {scores['test_exact_match']:.1%}, "
                f"{time.time() - start:.0f} s, load {load()}",
                flush=True,
            )
        results["probes"][str(seed)] = {
            "last digit": probe_runs(args, runs, data, args.output_dir / f"seed{seed}" / "probe-last-digit", False),
            "answer (eos)": probe_runs(args, runs, data, args.output_dir / f"seed{seed}" / "probe-answer", True),
        }
    results["load_end"] = load()
    text = table(results)
    print(f"\nload average at start {results['load_start']}, at end {results['load_end']} (1/5/15 min)\n{text}")
    (args.output_dir / "table.md").write_text(text + "\n")
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    summary_plot(results, args.output_dir / "summary.png")
    print(f"wrote {args.output_dir / 'results.json'}, table.md and summary.png")


if __name__ == "__main__":
    main()
